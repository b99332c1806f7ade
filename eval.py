"""Backtest a trained agent: `python eval.py ckpt_path=<checkpoint or run dir>` (see README)."""

import gc
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("PROJECT_ROOT", str(ROOT))

from adan.ops.run_dir import register_resolver  # noqa: E402
from adan.tasks.registry import register_configs  # noqa: E402

register_configs()
register_resolver()
# The modules loaded by now (torch and Lightning among them: ~500k objects) live until exit;
# frozen, they are skipped by every full garbage collection (0.3 s each) and at exit.
gc.freeze()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from adan.tasks.evaluate import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
