"""write_sweep_report on a real Optuna study (SQLite in tmp_path) whose trials point at run
directories holding synthetic validation returns: tables, DSR and PBO, figures, the eval line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, LogUniformDistribution
from optuna.trial import TrialState, create_trial

from adan.config.secrets import mask_password
from adan.evaluation.selection import (
    deflated_sharpe_ratio,
    per_bar_sharpe,
    probability_of_backtest_overfitting,
)
from adan.evaluation.sweep_report import (
    returns_matrix,
    storage_text,
    trial_returns,
    write_sweep_report,
)

PNG = b"\x89PNG\r\n\x1a\n"
DISTRIBUTIONS = {
    "agent.learning_rate": LogUniformDistribution(1e-5, 1e-3),
    "model.width": CategoricalDistribution([0.5, 1.0, 2.0]),
}
TIMES = pd.date_range("2024-06-01", periods=240, freq="h").strftime("%Y-%m-%d %H:%M:%S")

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _write_returns(path: Path, returns: np.ndarray, times=TIMES) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"time": times, "agent": returns}).to_csv(path, index=False)


def _add(study, state, number_value=None, run_dir=None, seed=0, lr=1e-4, width=1.0, **attrs):
    user_attrs = {"overrides": [f"agent.learning_rate={lr}"], "seed": seed, **attrs}
    if run_dir is not None:
        user_attrs["run_dir"] = str(run_dir)
    study.add_trial(
        create_trial(
            state=state,
            value=number_value,
            params={"agent.learning_rate": lr, "model.width": width},
            distributions=DISTRIBUTIONS,
            user_attrs=user_attrs,
            intermediate_values={0: 0.1, 1: 0.2} if state == TrialState.PRUNED else None,
        )
    )


def _study(tmp_path: Path, n_bars: int = 240):
    """Trials 0-4 complete with single-seed returns (trial 3's series starts 5 bars late),
    trial 5 complete over two seeds (seed 1 lacks the first bar), trial 6 pruned, trial 7
    failed, trial 8 complete without returns."""
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db", study_name="ppo_test", direction="maximize"
    )
    rng = np.random.default_rng(0)
    times = TIMES[:n_bars]
    values = [0.3, 1.2, 0.7, 0.9, -0.1]
    for i, (value, lr) in enumerate(zip(values, [1e-5, 3e-4, 1e-4, 5e-4, 2e-5], strict=True)):
        run = tmp_path / "runs" / str(i)
        r = 0.01 * rng.standard_normal(n_bars) + 0.0005 * i
        if i == 3:
            _write_returns(run / "val_returns.csv", r[5:], times[5:])
        else:
            _write_returns(run / "val_returns.csv", r, times)
        _add(study, TrialState.COMPLETE, value, run, seed=i, lr=lr, width=[0.5, 1.0, 2.0][i % 3])
    run = tmp_path / "runs" / "5"
    _write_returns(run / "seed_0" / "val_returns.csv", 0.01 * rng.standard_normal(n_bars), times)
    _write_returns(
        run / "seed_1" / "val_returns.csv", 0.01 * rng.standard_normal(n_bars - 1), times[1:]
    )
    _add(study, TrialState.COMPLETE, 1.0, run, seed=[0, 1], lr=2e-4, width=2.0)
    _add(study, TrialState.PRUNED, None, tmp_path / "runs" / "6", lr=9e-4, pruned_at=3)
    _add(study, TrialState.FAIL, None, tmp_path / "runs" / "7", lr=8e-4)
    _add(study, TrialState.COMPLETE, 0.1, tmp_path / "runs" / "8", lr=7e-4, width=0.5)
    return study


def _matrix(tmp_path: Path) -> pd.DataFrame:
    """The trials' validation returns on their common bars, built here from the files."""
    cols = {i: pd.read_csv(tmp_path / "runs" / str(i) / "val_returns.csv") for i in range(5)}
    series = {i: f.set_index("time")["agent"] for i, f in cols.items()}
    seeds = [
        pd.read_csv(tmp_path / "runs" / "5" / f"seed_{s}" / "val_returns.csv").set_index("time")
        for s in (0, 1)
    ]
    both = seeds[0].join(seeds[1], how="inner", lsuffix="0", rsuffix="1")
    series[5] = (both["agent0"] + both["agent1"]) / 2
    return pd.concat(series, axis=1, join="inner").sort_index()


def test_report_tables_statistics_figures_and_eval_line(tmp_path):
    study = _study(tmp_path)
    out = tmp_path / "sweep"
    style = dict(matplotlib.rcParams)
    path = write_sweep_report(study, out, top_k=3)
    assert not plt.get_fignums()  # optuna's pyplot figure is closed
    assert dict(matplotlib.rcParams) == style  # and its global ggplot style undone
    assert path == out / "sweep_report.md"
    text = path.read_text()
    summary = json.loads((out / "sweep_report.json").read_text())

    assert "# Sweep report: ppo_test" in text
    assert f"SQLite `sqlite:///{tmp_path}/s.db`" in text
    assert "**objective** maximize" in text
    assert "7 complete, 1 pruned, 1 fail" in text
    assert summary["counts"] == {"complete": 7, "pruned": 1, "fail": 1}

    # top 3 by value, best first: trials 1 (1.2), 5 (1.0), 3 (0.9)
    rows = [ln for ln in text.splitlines() if ln.startswith(("| 1 |", "| 2 |", "| 3 |", "| 4 |"))]
    assert [r.split("|")[2].strip() for r in rows] == ["1", "5", "3"]
    assert rows[0].split("|")[3].strip() == "1.2"
    assert "agent.learning_rate=0.0003<br>model.width=1" in rows[0]
    assert f"`{tmp_path / 'runs' / '1'}`" in rows[0]
    assert "| [0, 1] |" in rows[1]  # the multi-seed trial's seeds
    assert "| 6 | 3 | agent.learning_rate=0.0009" in text  # pruned at iteration 3
    assert "Failed trials: 7." in text
    assert "- trial 8: no val_returns.csv in" in text

    # DSR and PBO are selection.py's on the common-bar matrix of trials 0-5
    m = _matrix(tmp_path)
    assert len(m) == 235 and list(m.columns) == [0, 1, 2, 3, 4, 5]
    assert summary["common_bars"] == 235 and summary["trials_with_returns"] == [0, 1, 2, 3, 4, 5]
    d = deflated_sharpe_ratio(m[1].to_numpy(), per_bar_sharpe(m.to_numpy()))
    for key, value in d.as_dict().items():
        assert summary["dsr"][key] == pytest.approx(value, rel=1e-12), key
    assert summary["dsr"]["n_trials"] == 6 and summary["dsr"]["n_obs"] == 235
    assert f"**DSR = {d.dsr:.3f}** (trial 1;" in text
    assert f"SR0 = {d.sr0:.4f}" in text
    p = probability_of_backtest_overfitting(m.to_numpy(), n_splits=16)
    for key, value in p.as_dict().items():
        assert summary["pbo"][key] == pytest.approx(value, rel=1e-12), key
    assert summary["pbo"]["n_dropped"] == 235 % 16
    assert f"**PBO = {p.pbo:.3f}**" in text
    assert "n_splits reduced" not in text
    assert summary["best"]["number"] == 1 and summary["best"]["value"] == 1.2

    for key in ("optimization_history", "param_importances", "parallel_coordinate"):
        png = out / f"{key}.png"
        assert png.read_bytes()[:8] == PNG
        assert f"]({key}.png)" in text
        assert summary["plots"][key] == f"{key}.png"
    how = summary["importances_by"]  # fANOVA, or its fallback where optuna 2.10's fANOVA fails
    assert how == "fANOVA" or how.startswith("mean decrease in impurity of a random forest")
    assert f"Measured by {how}." in text

    command = f"python eval.py ckpt_path={tmp_path / 'runs' / '1'}"
    assert f"```bash\n{command}\n```" in text
    assert "the test split was not touched by the sweep" in text
    assert summary["eval_command"] == command


def test_a_given_eval_command_and_a_masked_password(tmp_path, monkeypatch):
    study = _study(tmp_path)
    backend = study._storage._backend
    monkeypatch.setattr(backend, "url", "postgresql+psycopg2://adan:s3cr3t@db.example:5432/hp")
    path = write_sweep_report(
        study, tmp_path / "sweep", eval_command="python eval.py ckpt_path=X split=test"
    )
    text = path.read_text()
    assert "s3cr3t" not in text
    assert "PostgreSQL `postgresql+psycopg2://adan:***@db.example:5432/hp`" in text
    assert "```bash\npython eval.py ckpt_path=X split=test\n```" in text


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://user:pa:ss@host/db", "postgresql://user:***@host/db"),
        ("mysql+pymysql://root:p%40ss@localhost:3306/optuna", "mysql+pymysql://root:***@localhost:3306/optuna"),
        ("redis://:hunter2@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("postgresql://host/db?user=u&password=pw&x=1", "postgresql://host/db?user=u&password=***&x=1"),
        ("sqlite:////tmp/a@b/s.db", "sqlite:////tmp/a@b/s.db"),
        # an override value as Hydra escapes it (the sweeper stores the trial's overrides)
        (r"postgresql\://ada\:s3cr3t@db\:5432/optuna", r"postgresql\://ada\:***@db\:5432/optuna"),
    ],
)  # fmt: skip
def test_mask_password(url, masked):
    assert mask_password(url) == masked


def test_storage_text_kinds():
    assert storage_text(optuna.create_study()) == "in memory (nothing persisted)"
    fake = SimpleNamespace(_storage=SimpleNamespace(url="mysql://a:b@h/db"))
    assert storage_text(fake) == "MySQL `mysql://a:***@h/db`"


def test_too_few_trials_skip_each_part_with_its_reason(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", direction="minimize")
    run = tmp_path / "runs" / "0"
    _write_returns(
        run / "val_returns.csv", np.random.default_rng(1).standard_normal(50), TIMES[:50]
    )
    _add(study, TrialState.COMPLETE, 0.5, run)
    _add(study, TrialState.FAIL, None, tmp_path / "runs" / "1")
    path = write_sweep_report(study, tmp_path / "sweep")
    text = path.read_text()
    summary = json.loads((tmp_path / "sweep" / "sweep_report.json").read_text())
    assert "**objective** minimize" in text
    reason = "fewer than 2 completed trials have a validation return series"
    assert f"Skipped: {reason}." in text
    assert summary["dsr"] is None and summary["dsr_skipped"] == reason
    assert summary["pbo"] is None and summary["pbo_skipped"] == reason
    assert "- Optimisation history: skipped, 1 completed trial(s), a figure needs 2." in text
    assert not list((tmp_path / "sweep").glob("*.png"))
    assert f"python eval.py ckpt_path={run}" in text


def test_few_common_bars_reduce_n_splits_and_say_so(tmp_path):
    study = _study(tmp_path, n_bars=30)  # trial 3 starts 5 bars late: 25 common bars
    write_sweep_report(study, tmp_path / "sweep", n_splits=16)
    text = (tmp_path / "sweep" / "sweep_report.md").read_text()
    summary = json.loads((tmp_path / "sweep" / "sweep_report.json").read_text())
    assert summary["common_bars"] == 25
    assert summary["pbo"]["n_splits"] == 12 and summary["pbo"]["n_combinations"] == math.comb(12, 6)
    assert "n_splits reduced from 16 to 12: 25 common bars leave at least 2 bars per block" in text


def test_trial_returns_reads_one_file_or_averages_the_seeds(tmp_path):
    _write_returns(tmp_path / "a" / "val_returns.csv", np.arange(4.0), TIMES[:4])
    assert trial_returns(tmp_path / "a").tolist() == [0.0, 1.0, 2.0, 3.0]
    _write_returns(tmp_path / "b" / "seed_0" / "val_returns.csv", np.arange(4.0), TIMES[:4])
    _write_returns(tmp_path / "b" / "seed_10" / "val_returns.csv", np.ones(3), TIMES[1:4])
    mean = trial_returns(tmp_path / "b")
    assert mean.index.tolist() == list(TIMES[1:4]) and mean.tolist() == [1.0, 1.5, 2.0]
    with pytest.raises(FileNotFoundError, match="no val_returns.csv in .*c nor in its seed_"):
        trial_returns(tmp_path / "c")
    (tmp_path / "d").mkdir()
    pd.DataFrame({"t": [1], "agent": [0.0]}).to_csv(tmp_path / "d" / "val_returns.csv")
    with pytest.raises(ValueError, match=r"d/val_returns.csv lacks column\(s\) \['time'\]"):
        trial_returns(tmp_path / "d")
    _write_returns(tmp_path / "e" / "val_returns.csv", [0.0, np.nan], TIMES[:2])
    with pytest.raises(ValueError, match="non-finite returns in column 'agent'"):
        trial_returns(tmp_path / "e")


def test_returns_matrix_aligns_on_common_times_in_time_order(tmp_path):
    order = [3, 0, 2, 1]  # a file written out of order
    _write_returns(tmp_path / "a" / "val_returns.csv", np.array(order, float), TIMES[order])
    _write_returns(tmp_path / "b" / "val_returns.csv", np.arange(3.0) * 10, TIMES[1:4])
    trials = [
        create_trial(
            state=TrialState.COMPLETE, value=1.0, user_attrs={"run_dir": str(tmp_path / d)}
        )
        for d in ("a", "b")
    ]
    trials += [create_trial(state=TrialState.COMPLETE, value=2.0)]
    for number, t in enumerate(trials):
        t.number = number
    matrix, skipped = returns_matrix(trials)
    assert matrix.index.tolist() == list(TIMES[1:4])
    assert matrix.to_numpy().tolist() == [[1.0, 0.0], [2.0, 10.0], [3.0, 20.0]]
    assert skipped == {2: "no run_dir user attribute"}
