"""Train a PPO agent: `python train.py [group=option ...] [key=value ...]` (see README)."""

import gc
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
(ROOT / "outputs" / "optuna").mkdir(parents=True, exist_ok=True)  # Optuna's SQLite lives here

from adan.ops.run_dir import register_resolver  # noqa: E402
from adan.tasks.registry import register_configs  # noqa: E402

register_configs()
register_resolver()
# The modules loaded by now (torch and Lightning among them: ~500k objects) live until exit;
# frozen, they are skipped by every full garbage collection (0.3 s each) and at exit.
gc.freeze()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from adan.tasks.train import train

    summary = train(cfg)
    if summary.get("status") == "interrupted":  # SIGINT/SIGTERM: 130/143, as schedulers expect
        raise SystemExit(summary["exit_code"])
    objective = summary.get("objective", {})
    return next(iter(objective.values()), None)  # the value an Optuna sweep maximises


if __name__ == "__main__":
    main()
