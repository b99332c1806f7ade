"""docs/configuration.md's hand-written tables agree with the composed config.

The page explains each group in prose and tables; its default column restates values whose
home is the dataclasses (docs/settings.md is generated from them). Every row whose key and
default are plain literals is checked here against the config ``train.py`` composes, so the
page cannot drift from the code unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from adan.data.schema import TimeframeSchema
from adan.tasks.registry import register_configs

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
register_configs()

# the page's key/default tables in order: (group node, overrides that select the option);
# a table with two default columns gives one entry per column
TABLES: list[list[tuple[str | None, tuple[str, ...]]]] = [
    [("", ())],  # top-level keys of train.yaml
    [("data", ())],  # keys of every option
    [("timeframe", ())],  # each entry of data.timeframes
    [("data", ())],  # synthetic
    [("data", ("data=csv", "data.path=x.csv"))],  # file keys
    [("env", ())],
    [("env", ("experiment=cartpole",))],
    [("model", ("model=cnn",)), ("model", ("model=mlp",))],
    [("model.extractor", ("model=cnn",))],
    [("model.extractor", ("model=mlp",))],
    [("reward", ("reward=simple",))],
    [("reward", ("reward=adaptive",))],
    [("trading", ())],
    [("agent", ())],
    [("hparams_search", ("hparams_search=ppo_optuna",))],  # the sweep's settings
    [("walk_forward", ("walk_forward=rolling",))],
    [("eval", ())],  # eval.yaml
]
CELL = re.compile(r"^`([^`]+)`$")


def tables() -> list[list[list[str]]]:
    """The rows (cells) of every table whose header starts ``| key | default`` or
    ``| key | cnn | mlp``, in page order."""
    out, rows = [], None
    for line in PAGE.read_text(encoding="utf8").splitlines():
        cells = (
            [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|")
            else None
        )
        if cells and cells[0] == "key" and cells[1] in ("default", "cnn"):
            rows = []
            out.append(rows)
        elif cells is None:
            rows = None
        elif rows is not None and not set(cells[0]) <= {"-", ":"}:
            rows.append(cells)
    return out


def literal(text: str):
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 as a string
        except ValueError:
            return value
    return value


def node(path: str, overrides: tuple[str, ...]) -> dict:
    if path == "timeframe":
        return OmegaConf.to_container(OmegaConf.structured(TimeframeSchema))
    name = "eval" if path == "eval" else "train"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(name, overrides=list(overrides))
    if path in ("", "eval"):
        return OmegaConf.to_container(cfg, resolve=False)
    return OmegaConf.to_container(OmegaConf.select(cfg, path), resolve=False)


def _get(tree: dict, key: str):
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            raise KeyError(key)
        tree = tree[part]
    return tree


def test_the_page_has_the_tables_this_test_knows():
    assert len(tables()) == len(TABLES), "a table was added or removed: update TABLES"


CHECKED = [i for i, t in enumerate(TABLES) if t[0][0] is not None]


@pytest.mark.parametrize("index", CHECKED, ids=[TABLES[i][0][0] or "root" for i in CHECKED])
def test_every_plain_default_in_a_table_is_the_composed_value(index):
    checked = 0
    for column, (path, overrides) in enumerate(TABLES[index], start=1):
        values = node(path, overrides)
        for cells in tables()[index]:
            key, default = CELL.match(cells[0]), CELL.match(cells[column])
            if not (key and default) or " " in key.group(1):
                continue  # prose: several keys, or a default that depends on the option
            documented = literal(default.group(1))
            try:
                actual = _get(values, key.group(1))
            except KeyError:
                if documented is None:
                    continue  # a group that defaults to null composes to no key
                pytest.fail(f"docs/configuration.md names {path}.{key.group(1)}, which is no key")
            if isinstance(actual, list):
                actual = [literal(str(v)) if isinstance(v, str) else v for v in actual]
            assert documented == actual, (
                f"docs/configuration.md says {path}.{key.group(1)} defaults to {documented!r}; "
                f"the composed config has {actual!r}"
            )
            checked += 1
    assert checked > 0
