"""Paper-trade a trained agent as a service: `python trade.py ckpt_path=<run>` (see README)."""

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


@hydra.main(version_base="1.3", config_path="conf", config_name="trade")
def main(cfg: DictConfig) -> None:
    from adan.tasks.trade import trade

    trade(cfg)


if __name__ == "__main__":
    main()
