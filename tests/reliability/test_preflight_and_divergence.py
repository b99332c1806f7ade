"""A config that validates does not crash mid-run, and a run that diverges stops cleanly,
naming the iteration and the quantity, with its last good checkpoint kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from adan.data.calendar import resolve_bars_per_year
from adan.errors import ConfigError, DivergenceError
from adan.evaluation.checkpoint import read_checkpoint
from tests.reliability.conftest import DEBUG, FAST, output, run, train_in_process


@pytest.mark.parametrize(
    "overrides, key, words",
    [
        # 16 envs x 32 steps = 512 rows, but an episode of 48 steps costs each env a reset step
        (["agent.n_minibatches=512"], "agent.n_minibatches", "autoreset"),
        (["agent.n_steps=1"], "agent.n_steps", "must be >= 2"),
        (["optimized_metric=val/sharp"], "optimized_metric", "did you mean val/sharpe"),
        (["trainer.max_epochs=0"], "trainer.max_epochs", "must be >= 1 or null"),
        (["experiment=cartpole", "optimized_metric=val/sharpe"], "optimized_metric",
         "val/mean_return"),
    ],
    ids=["minibatches-vs-valid-rows", "n_steps", "metric-typo", "max-epochs-0", "gym-metric"],
)  # fmt: skip
def test_settings_that_would_fail_mid_run_are_refused_before_any_work(
    tmp_path, overrides, key, words
):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        train_in_process(out, *DEBUG, *overrides)
    assert key in str(err.value) and words in str(err.value)
    assert not out.exists()  # refused before the data, the model or any file


def test_a_refusal_reaches_the_command_line_before_any_work(tmp_path):
    out = tmp_path / "run"
    proc = run("train.py", out, *FAST, "agent.n_minibatches=512")
    assert proc.returncode != 0
    assert "ConfigError: agent.n_minibatches must be <= the transitions of one rollout, 496" in (
        proc.stderr
    )
    assert not (out / "checkpoints").exists()
    assert "PPO iterations" not in output(proc)


def test_the_largest_minibatch_count_that_validates_runs(tmp_path):
    # 16 envs x (32 steps - 1 reset step) = 496 valid rows once episodes of 48 steps end
    # (one pass over each rollout: 496 minibatches of one row are slow enough)
    summary = train_in_process(tmp_path / "run", *FAST, "agent.n_minibatches=496",
                               "agent.n_epochs=1", "trainer.max_epochs=2")  # fmt: skip
    assert summary["status"] == "completed" and summary["env_steps"] == 2 * 512


def test_divergence_stops_naming_the_iteration_and_the_quantity(tmp_path):
    out = tmp_path / "run"
    proc = run("train.py", out, *FAST, "agent.learning_rate=1e10")
    assert proc.returncode != 0
    text = proc.stderr
    assert (
        "DivergenceError: training diverged at iteration 0 (env step 512): the loss is not "
        "finite" in text
    ), text[-3000:]
    assert "std >= 0.0" not in text and "Expected parameter" not in text
    assert "no checkpoint was written" in text  # it diverged in its first iteration
    assert not (out / "summary.json").exists()  # a diverged run reports no results


def test_an_absurd_reward_scale_stops_naming_the_rewards(tmp_path):
    with pytest.raises(DivergenceError, match="at iteration 0 .*: rewards is not finite"):
        train_in_process(tmp_path / "run", *FAST, "reward.scale=1e300")


def test_a_blow_up_after_good_iterations_keeps_their_checkpoint(tmp_path):
    out = tmp_path / "run"
    poison = ["+callbacks.poison._target_=tests.reliability.probe.PoisonParameters",
              "+callbacks.poison.at=3"]  # fmt: skip
    with pytest.raises(DivergenceError) as err:
        train_in_process(out, *FAST, *poison)
    text = str(err.value)
    assert "training diverged at iteration 3" in text and "values is not finite" in text
    last = out / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint is {last}" in text
    ckpt = read_checkpoint(last)
    assert ckpt["adan_state"]["env_steps"] == 3 * 512  # iterations 0, 1 and 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (out / "summary.json").exists()


def _daily_equity_csv(path, days: int = 900) -> None:
    """Closes of a random walk on exchange days (weekdays less US holidays), as a broker's
    daily export writes them."""
    from pandas.tseries.holiday import USFederalHolidayCalendar

    rng = np.random.default_rng(0)
    holidays = USFederalHolidayCalendar().holidays("2019-01-01", "2024-12-31")
    dates = pd.bdate_range("2019-01-01", periods=days, freq="C", holidays=holidays)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, days)))
    opens = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame({
        "date": dates.strftime("%Y-%m-%d"), "open": opens,
        "high": np.maximum(opens, close) * 1.004, "low": np.minimum(opens, close) * 0.996,
        "close": close, "volume": rng.integers(10_000, 20_000, days),
    })  # fmt: skip
    frame.to_csv(path, index=False)


def test_daily_equity_bars_are_annualised_as_daily_and_a_wrong_setting_is_refused(tmp_path):
    csv = tmp_path / "SPY_1d.csv"
    _daily_equity_csv(csv)
    data = ["data=csv", f"data.path={csv}", "data.features=[log_return,momentum_6,volatility_24]"]
    summary = train_in_process(tmp_path / "right", *DEBUG, *data, "trainer.max_epochs=1")
    assert summary["bars_per_year"] == 252  # not 8760: Sharpe ratios ~5.9x too large
    with pytest.raises(ConfigError) as err:
        train_in_process(tmp_path / "wrong", *DEBUG, *data, "data.bars_per_year=8760")
    assert "data.bars_per_year=8760, but the data's bars (1d apart, equity calendar) make 252" in (
        str(err.value)
    )
    assert not (tmp_path / "wrong" / "checkpoints").exists()
    # the old key still works, moved to the data group with a warning naming the new one
    with pytest.warns(FutureWarning, match="env.bars_per_year is deprecated.*data.bars_per_year"):
        old = train_in_process(
            tmp_path / "old", *DEBUG, *data, "env.bars_per_year=250", "trainer.max_epochs=1"
        )
    assert old["bars_per_year"] == 250


def test_bars_per_year_comes_from_the_data_unless_set():
    hourly = {"bars_per_year": 8760.0, "bar_interval": "1h", "calendar": "24x7"}
    assert resolve_bars_per_year(None, hourly) == 8760.0
    assert resolve_bars_per_year(8766, hourly) == 8766.0  # within 10%: the user's choice
    with pytest.raises(ConfigError, match="data.bars_per_year=252"):
        resolve_bars_per_year(252, hourly)
