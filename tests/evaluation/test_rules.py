"""The simple rules with the agent's action space, and the paired Sharpe-difference interval."""

import numpy as np
import pytest

from adan.evaluation.backtest import record_performance, run_backtest
from adan.evaluation.baselines import (
    MACrossoverActor,
    MomentumActor,
    VolTargetActor,
    choose_momentum_lookback,
    run_baselines,
)
from adan.evaluation.bootstrap import sharpe_difference_interval
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from tests.market.markets import make_market, random_walk


def test_momentum_reads_only_past_closes_and_follows_the_sign():
    close = random_walk(num_bars=300, num_assets=2).close
    changed = close.copy()
    changed[150:] *= 0.5
    for short in (False, True):
        a, b = MomentumActor(close, 12, short), MomentumActor(changed, 12, short)
        np.testing.assert_array_equal(a.side[:150], b.side[:150])
    side = MomentumActor(close, 12, short=True).side
    np.testing.assert_array_equal(side[12:], np.sign(close[12:] - close[:-12]))
    assert not side[:12].any()
    assert MomentumActor(close, 12, short=False).side.min() == 0.0


def test_ma_long_short_is_short_below_the_slow_average():
    close = np.concatenate([np.linspace(100, 150, 100), np.linspace(150, 80, 100)])[:, None]
    side = MACrossoverActor(close, 5, 20, short=True).side[:, 0]
    assert side[60] == 1.0 and side[180] == -1.0 and side[10] == 0.0
    assert MACrossoverActor(close, 5, 20).side[180, 0] == 0.0


def test_the_rules_take_the_agents_action_space():
    data = random_walk(num_bars=400)
    for allow_short in (True, False):
        spec = MarketSpec.of(data, TradingConfig(allow_short=allow_short), window=8)
        recs = run_baselines(["ma_long_short", "momentum"], spec, momentum_lookback=6)
        for rec in recs.values():
            shorted = (rec.weights < -1e-9).any()
            assert shorted == allow_short


def test_the_momentum_lookback_is_the_best_one_on_the_bars_it_is_chosen_on():
    # a market trending up for 100 bars then down for 100, repeated: long lookbacks lag
    one = np.concatenate([np.linspace(100, 130, 100), np.linspace(130, 100, 100)])
    close = np.tile(one, 3)
    data = make_market(close, close)
    spec = MarketSpec.of(data, TradingConfig(fee_bps=0, half_spread_bps=0, slippage_bps=0),
                         window=4, bars_per_year=8760)  # fmt: skip
    chosen = choose_momentum_lookback(spec, [2, 50, 150])
    trading = TradingConfig(fee_bps=0, half_spread_bps=0, slippage_bps=0, max_leverage=1.0)
    sharpes = {
        k: record_performance(
            run_backtest(MomentumActor(close[:, None], k, True),
                         MarketSpec.of(data, trading, window=4, bars_per_year=8760)),
            8760,
        )["sharpe"]
        for k in (2, 50, 150)
    }  # fmt: skip
    assert chosen == max(sharpes, key=sharpes.get)


def test_the_paired_interval_is_of_the_difference_alone():
    rng = np.random.default_rng(0)
    market = rng.normal(0, 0.01, 3000)
    edge = market + rng.normal(2e-4, 1e-3, 3000)  # the market plus a small steady edge
    d, lo, hi = sharpe_difference_interval(edge, market, 8760, mean_block=10, n_boot=400)
    sharpe = lambda x: x.mean() / x.std(ddof=1) * np.sqrt(8760)  # noqa: E731
    assert d == pytest.approx(sharpe(edge) - sharpe(market))
    assert lo <= d <= hi
    # each Sharpe on its own has an interval far wider than the difference's
    assert hi - lo < 2.0
    same = sharpe_difference_interval(market, market, 8760, mean_block=10, n_boot=100)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="differ in length"):
        sharpe_difference_interval(market, market[:-1], 8760, mean_block=10)


def test_vol_target_steps_down_when_volatility_rises_and_reads_only_the_past():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, (1000, 2))
    r[600:700] *= 4  # a turbulent stretch
    close = 100 * np.exp(np.cumsum(r, axis=0))
    scale = VolTargetActor(close, window=50).scale
    assert (scale <= 1.0).all() and (scale[:50] == 1.0).all()  # never levered; long at first
    assert scale[650:700].max() < 0.5 < scale[550:600].min()  # down in the storm, not before
    changed = close.copy()
    changed[800:] *= 2.0
    np.testing.assert_array_equal(scale[:800], VolTargetActor(changed, window=50).scale[:800])
    rec = run_baselines(["vol_target"], MarketSpec.of(random_walk(num_bars=400), TradingConfig(),
                                                       window=8))["vol_target"]  # fmt: skip
    assert (rec.weights >= -1e-12).all()  # long only, whatever the agent may do
