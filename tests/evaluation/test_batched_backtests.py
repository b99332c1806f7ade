"""Strategies stepped as one batch of the simulator get the records they get alone, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from adan.envs.registration import small_market
from adan.evaluation.backtest import record_performance, run_backtest, run_backtests
from adan.evaluation.baselines import (
    BASELINES,
    MomentumActor,
    RandomActor,
    baseline_actors,
    choose_momentum_lookback,
    rule_trading,
    run_strategies,
)
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from tests.market.profiles import trading_profile


def _spec(trading: TradingConfig | None = None) -> MarketSpec:
    return MarketSpec.of(small_market()["val"], trading, window=32)


def _assert_same(batched, alone) -> None:
    assert batched.name == alone.name
    for key in ("timestamps", "equity", "weights", "costs", "turnover", "close"):
        np.testing.assert_array_equal(getattr(batched, key), getattr(alone, key), err_msg=key)


@pytest.mark.parametrize("trading", [TradingConfig(), TradingConfig(action_mode="discrete")],
                         ids=["continuous", "discrete"])  # fmt: skip
def test_every_baseline_in_one_batch_equals_its_backtest_alone(trading):
    spec = _spec(trading)
    names = [n for n in BASELINES if n != "buy_and_hold"]
    batched = run_strategies(baseline_actors(names, spec, random_runs=3, seed=4), spec, seed=4)
    for name, (actor, runs, cfg) in baseline_actors(names, spec, random_runs=3, seed=4).items():
        alone = run_backtest(actor, replace(spec, trading=cfg), num_runs=runs, seed=4, name=name)
        _assert_same(batched[name], alone)
    assert batched["random"].runs == 3 and batched["flat"].runs == 1


def test_a_stateful_actor_sees_only_its_own_rows():
    spec = _spec()
    actors = {"a": (RandomActor(spec.trading, 2, runs=2, seed=0), 2),
              "b": (RandomActor(spec.trading, 2, runs=1, seed=9), 1)}  # fmt: skip
    batched = run_backtests(actors, spec)
    alone = run_backtest(RandomActor(spec.trading, 2, runs=1, seed=9), spec, name="b")
    _assert_same(batched["b"], alone)
    assert not np.array_equal(batched["a"].equity[:, 0], batched["b"].equity[:, 0])


def test_momentum_lookback_chosen_in_one_batch_is_the_one_chosen_one_by_one():
    spec = _spec()
    candidates = [6, 24, 72, 168]
    rules = replace(spec, trading=rule_trading(spec.trading))
    sharpe = {
        k: record_performance(
            run_backtest(MomentumActor(spec.data.close, k, True), rules), spec.bars_per_year
        )["sharpe"]
        for k in candidates
    }
    assert choose_momentum_lookback(spec, candidates) == max(sharpe, key=sharpe.get)


def test_several_profiles_cannot_share_a_batch():
    spec = _spec(trading_profile("multi_profile"))
    actors = {"a": (RandomActor(spec.trading, 2, 3), 3), "b": (RandomActor(spec.trading, 2, 3), 3)}
    with pytest.raises(ValueError, match=r"trading\.only"):
        run_backtests(actors, spec)
