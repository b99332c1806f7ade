import re

import numpy as np
import pytest

from adan.errors import ConfigError
from adan.market.stops import (
    EXIT_NONE,
    EXIT_STOP,
    EXIT_TARGET,
    StopBook,
    StopsConfig,
    average_true_range,
)

T = 50


def flat_bars(num_assets=1, num_bars=T, spread=2.0):
    close = np.full((num_bars, num_assets), 100.0)
    return close + spread / 2, close - spread / 2, close  # high, low, close


def book(*configs, profile=(0,), num_assets=1, bars=None):
    high, low, close = bars if bars is not None else flat_bars(num_assets)
    return StopBook(configs, np.asarray(profile), num_assets, high, low, close)


def arr(*rows):
    return np.asarray(rows, dtype=np.float64)


def open_position(sb, units, price=100.0, t=10, **mults):
    units = np.asarray(units, dtype=np.float64)
    sb.on_fill(
        np.zeros_like(units), units, np.full(units.shape, price), np.full(len(units), t), **mults
    )


# --------------------------------------------------------------------------------- ATR
def test_atr_is_wilder_with_defined_causal_warm_up():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 2)), axis=0))
    high = close * (1 + rng.uniform(0, 0.01, close.shape))
    low = close * (1 - rng.uniform(0, 0.01, close.shape))
    w = 14
    atr = average_true_range(high, low, close, w)
    prev = np.vstack([close[:1], close[:-1]])
    tr = np.maximum.reduce([high - low, np.abs(high - prev), np.abs(low - prev)])
    tr[0] = high[0] - low[0]
    ref = np.empty_like(tr)
    for t in range(len(tr)):
        if t < w:
            ref[t] = tr[: t + 1].mean(axis=0)
        else:
            ref[t] = (ref[t - 1] * (w - 1) + tr[t]) / w
    np.testing.assert_allclose(atr, ref, rtol=1e-12)
    assert np.isfinite(atr).all()
    changed_high = high.copy()
    changed_high[200:] *= 1.5
    assert np.array_equal(average_true_range(changed_high, low, close, w)[:200], atr[:200])


# ------------------------------------------------------------------------------ levels
def test_pct_levels_long_and_short():
    sb = book(StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1), profile=[0, 0])
    open_position(sb, arr([2.0], [-3.0]))
    np.testing.assert_allclose(sb.stop, [[95.0], [105.0]])
    np.testing.assert_allclose(sb.target, [[110.0], [90.0]])


def test_atr_levels_use_the_atr_of_the_decision_bar_and_multipliers():
    bars = flat_bars(spread=2.0)
    bars[0][30:] += 3.0  # wider bars later must not leak into earlier levels
    sb = book(
        StopsConfig(mode="atr", stop_loss=2.0, take_profit=3.0, atr_window=5),
        profile=[0, 0],
        bars=bars,
    )
    atr = average_true_range(*bars, 5)
    assert atr[10, 0] == pytest.approx(2.0)
    open_position(
        sb,
        arr([1.0], [-1.0]),
        t=10,
        stop_mult=np.array([1.0, 0.5]),
        target_mult=np.array([2.0, 1.0]),
    )
    np.testing.assert_allclose(sb.stop, [[100 - 2 * 2.0], [100 + 2 * 2.0 * 0.5]])
    np.testing.assert_allclose(sb.target, [[100 + 3 * 2.0 * 2], [100 - 3 * 2.0]])


def test_added_positions_keep_levels_flips_get_new_ones_closed_lose_them():
    sb = book(StopsConfig(mode="pct", stop_loss=0.1), profile=[0, 0, 0], num_assets=1)
    open_position(sb, arr([1.0], [1.0], [1.0]), price=100.0)
    before, after = arr([1.0], [1.0], [1.0]), arr([3.0], [-2.0], [0.0])
    sb.on_fill(before, after, np.full((3, 1), 120.0), np.full(3, 11))
    assert sb.stop[0, 0] == pytest.approx(90.0)  # added to: keeps the old level
    assert sb.stop[1, 0] == pytest.approx(132.0)  # flipped short at 120: new level above
    assert np.isnan(sb.stop[2, 0])  # closed
    assert np.isnan(sb.target).all()  # no take_profit configured


# ------------------------------------------------------------------------------- check
def check_one(sb, units, open_, high, low):
    exit_, price, kind = sb.check(arr([units]), arr([open_]), arr([high]), arr([low]))
    return bool(exit_[0, 0]), price[0, 0], int(kind[0, 0])


@pytest.fixture
def long_book():
    sb = book(StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1))
    open_position(sb, arr([1.0]))  # stop 95, target 110
    return sb


def test_low_crossing_the_stop_fills_at_the_stop(long_book):
    assert check_one(long_book, 1.0, 99.0, 100.0, 94.0) == (True, pytest.approx(95.0), EXIT_STOP)
    assert long_book.counts["stop"][0] == 1 and long_book.counts["gap"][0] == 0


def test_open_below_the_stop_fills_at_the_open(long_book):
    assert check_one(long_book, 1.0, 93.0, 96.0, 90.0) == (True, 93.0, EXIT_STOP)
    assert long_book.counts["gap"][0] == 1


def test_target_fills_at_the_target_or_at_a_gapped_open(long_book):
    assert check_one(long_book, 1.0, 105.0, 111.0, 104.0) == (True, 110.0, EXIT_TARGET)
    assert check_one(long_book, 1.0, 112.0, 115.0, 94.0) == (True, 112.0, EXIT_TARGET)
    assert long_book.counts["target"][0] == 2 and long_book.counts["gap"][0] == 1


def test_both_levels_in_range_assumes_the_stop(long_book):
    assert check_one(long_book, 1.0, 100.0, 111.0, 94.0) == (True, 95.0, EXIT_STOP)


def test_no_touch_no_exit_and_flat_positions_never_exit(long_book):
    exit_, price, kind = check_one(long_book, 1.0, 100.0, 109.0, 96.0)
    assert not exit_ and np.isnan(price) and kind == EXIT_NONE
    assert not check_one(long_book, 0.0, 100.0, 200.0, 1.0)[0]


def test_short_stop_target_and_gaps():
    sb = book(StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1))
    open_position(sb, arr([-1.0]))  # stop 105, target 90
    assert check_one(sb, -1.0, 101.0, 106.0, 99.0) == (True, pytest.approx(105.0), EXIT_STOP)
    assert check_one(sb, -1.0, 107.0, 108.0, 100.0) == (True, 107.0, EXIT_STOP)
    assert check_one(sb, -1.0, 95.0, 96.0, 89.0) == (True, 90.0, EXIT_TARGET)
    assert check_one(sb, -1.0, 88.0, 106.0, 87.0) == (True, 88.0, EXIT_TARGET)
    assert check_one(sb, -1.0, 100.0, 106.0, 89.0) == (True, pytest.approx(105.0), EXIT_STOP)


def test_clear_and_reset_drop_levels(long_book):
    long_book.clear(np.array([[True]]))
    assert not check_one(long_book, 1.0, 50.0, 60.0, 40.0)[0]
    open_position(long_book, arr([1.0]))
    long_book.reset_envs(np.array([True]))
    assert np.isnan(long_book.stop).all() and np.isnan(long_book.target).all()


# -------------------------------------------------------------------------- vectorised
def test_vectorised_over_envs_with_two_profiles():
    configs = (
        StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1),
        StopsConfig(mode="atr", stop_loss=1.0, take_profit=None, atr_window=3),
        StopsConfig(mode="none"),
    )
    profile = [0, 1, 0, 1, 2]
    sb = book(*configs, profile=profile, num_assets=2)
    assert sb.active
    units = arr([1, -1], [1, -1], [-1, 0], [0, 1], [1, 1])
    open_position(sb, units)  # ATR of the flat bars is 2.0
    expected_stop = arr([95, 105], [98, 102], [105, np.nan], [np.nan, 98], [np.nan, np.nan])
    np.testing.assert_allclose(sb.stop, expected_stop)
    expected_target = arr([110, 90], [np.nan] * 2, [90, np.nan], [np.nan] * 2, [np.nan] * 2)
    np.testing.assert_allclose(sb.target, expected_target)
    high = np.full((5, 2), 103.0)
    low = np.full((5, 2), 97.0)
    exit_, price, kind = sb.check(units, np.full((5, 2), 100.0), high, low)
    expected_kind = [[0, 0], [1, 1], [0, 0], [0, 1], [0, 0]]
    assert kind.tolist() == expected_kind
    np.testing.assert_allclose(price[1], [98.0, 102.0])
    assert np.array_equal(exit_, kind != 0)
    assert sb.counts["stop"].tolist() == [0, 2, 0, 1, 0]
    assert sb.summary()["stops/stop"] == 3


def test_inactive_when_every_profile_is_none():
    sb = book(StopsConfig(), StopsConfig(mode="none"), profile=[0, 1])
    assert not sb.active
    open_position(sb, arr([1.0], [-1.0]))
    assert np.isnan(sb.stop).all()


def test_state_dict_round_trip():
    sb = book(StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1), profile=[0, 0])
    open_position(sb, arr([1.0], [-1.0]))
    sb.check(arr([1.0], [-1.0]), arr([100.0], [100.0]), arr([101.0], [106.0]), arr([94.0], [99.0]))
    other = book(StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1), profile=[0, 0])
    other.load_state_dict(sb.state_dict())
    for key, value in sb.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)
    bar = (arr([1.0], [-1.0]), arr([100.0], [100.0]), arr([111.0], [100.0]), arr([99.0], [89.0]))
    for x, y in zip(sb.check(*bar), other.check(*bar), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "trailing"}, "trading.stops.mode must be one of"),
        ({"mode": "pct", "stop_loss": 0}, "trading.stops.stop_loss must be finite and > 0"),
        ({"mode": "pct", "stop_loss": 1.5}, "trading.stops.stop_loss must be < 1 in pct mode"),
        ({"take_profit": -1.0}, "trading.stops.take_profit must be finite and > 0"),
        ({"mode": "atr", "stop_loss": None}, "trading.stops.stop_loss or take_profit must be"),
        ({"atr_window": 0}, "trading.stops.atr_window must be an integer >= 1"),
    ],
)
def test_bad_config_raises_naming_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        StopsConfig(**kwargs)


# ------------------------------------------------------------- element-wise reference
def reference_levels(sb, configs, profile, bars, before, after, price, t, s_mult, t_mult):
    """on_fill's rules one position at a time (plain Python floats)."""
    stop, target = sb.stop.copy(), sb.target.copy()
    for i, j in np.ndindex(*after.shape):
        cfg = configs[profile[i]]
        if after[i, j] == 0:
            stop[i, j] = target[i, j] = np.nan
            continue
        side = np.sign(after[i, j])
        if side == np.sign(before[i, j]):
            continue  # added to or reduced: keeps its levels
        if cfg.mode == "pct":
            unit = price[i, j]
        elif cfg.mode == "atr":
            unit = average_true_range(*bars, cfg.atr_window)[t[i], j]
        else:
            unit = np.nan
        sl = np.nan if cfg.mode == "none" or cfg.stop_loss is None else cfg.stop_loss
        tp = np.nan if cfg.mode == "none" or cfg.take_profit is None else cfg.take_profit
        stop[i, j] = price[i, j] - side * (unit * (sl * s_mult[i]))
        target[i, j] = price[i, j] + side * (unit * (tp * t_mult[i]))
    return stop, target


def reference_check(units, open_, high, low, stop, target):
    """check's rules one position at a time: (exit, price, kind, gap)."""
    exit_ = np.zeros(units.shape, dtype=bool)
    price = np.full(units.shape, np.nan)
    kind = np.zeros(units.shape, dtype=np.int8)
    gap = np.zeros(units.shape, dtype=bool)
    for ij in np.ndindex(*units.shape):
        u, o, h, lo, s, g = (x[ij] for x in (units, open_, high, low, stop, target))
        if u > 0:
            stop_gap, target_gap, stop_hit, target_hit = o <= s, o >= g, lo <= s, h >= g
        elif u < 0:
            stop_gap, target_gap, stop_hit, target_hit = o >= s, o <= g, h >= s, lo <= g
        else:
            continue
        if target_gap or (target_hit and not stop_hit):
            kind[ij], gap[ij], level = EXIT_TARGET, target_gap, g
        elif stop_hit or stop_gap:
            kind[ij], gap[ij], level = EXIT_STOP, stop_gap, s
        else:
            continue
        exit_[ij] = True
        price[ij] = o if gap[ij] else level
    return exit_, price, kind, gap


LAYOUTS = {
    "pct": ([StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1)], [0] * 6),
    "one_atr": ([StopsConfig(mode="atr", stop_loss=2.0, take_profit=4.0, atr_window=3)], [0] * 6),
    "mixed": (
        [
            StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1),
            StopsConfig(mode="atr", stop_loss=2.0, take_profit=None, atr_window=3),
            StopsConfig(mode="atr", stop_loss=None, take_profit=3.0, atr_window=5),
            StopsConfig(mode="none"),
        ],
        [0, 1, 2, 3, 1, 0],
    ),
    "targets_only": ([StopsConfig(mode="pct", stop_loss=None, take_profit=0.08)], [0] * 6),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_on_fill_and_check_follow_the_rules_position_by_position(layout):
    """Random books, fills and bars (flips, closes, NaN units and prices, gaps, ties, bars
    whose open lies outside [low, high], two assets of one env exiting together) against
    the rules applied one position at a time, bit for bit, counts included."""
    configs, profile = LAYOUTS[layout]
    rng = np.random.default_rng(7)
    a = 3
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, a)), axis=0))
    bars = (close * 1.01, close * 0.99, close)
    sb = book(*configs, profile=profile, num_assets=a, bars=bars)
    n = len(profile)
    units = np.zeros((n, a))
    choices = np.array([-2.0, -1.0, -0.0, 0.0, 1.0, 3.0, np.nan])
    counts = {k: np.zeros(n, dtype=np.int64) for k in ("stop", "target", "gap")}
    for step in range(60):
        after = rng.choice(choices, size=(n, a), p=[0.2, 0.2, 0.05, 0.1, 0.2, 0.2, 0.05])
        after = np.where(rng.random((n, a)) < 0.5, units, after)  # many positions unchanged
        price = np.round(rng.uniform(95, 105, (n, a)))
        t = rng.integers(0, T, n)
        mults = {}
        if step % 2:
            mults = {"stop_mult": rng.uniform(0.5, 2, n), "target_mult": rng.uniform(0.5, 2, n)}
        ones = np.ones(n)
        expected = reference_levels(
            sb, configs, profile, bars, units, after, price, t,
            mults.get("stop_mult", ones), mults.get("target_mult", ones),
        )  # fmt: skip
        sb.on_fill(units, after, price, t, **mults)
        np.testing.assert_array_equal(sb.stop, expected[0])
        np.testing.assert_array_equal(sb.target, expected[1])
        units = after

        # Integer prices make ties with the levels of the pct books common.
        open_, high, low = (np.round(rng.uniform(85, 115, (n, a))) for _ in range(3))
        for x in (open_, high, low):
            x[rng.random((n, a)) < 0.05] = np.nan
        exit_, exit_price, kind, gap = reference_check(units, open_, high, low, sb.stop, sb.target)
        for name, mask in (("stop", kind == EXIT_STOP), ("target", kind == EXIT_TARGET)):
            counts[name] += mask.sum(axis=1)
        counts["gap"] += gap.sum(axis=1)
        got = sb.check(units, open_, high, low)
        for value, want in zip(got, (exit_, exit_price, kind), strict=True):
            assert value.dtype == want.dtype
            np.testing.assert_array_equal(value, want)
        for name, value in counts.items():
            np.testing.assert_array_equal(sb.counts[name], value)
        sb.clear(exit_)
        assert np.isnan(sb.stop[exit_]).all() and np.isnan(sb.target[exit_]).all()
        units = np.where(exit_, 0.0, units)
    assert (counts["stop"] + counts["target"]).sum() > 20 and counts["gap"].sum() > 5


def test_check_without_any_level_reached_reports_nothing():
    sb = book(StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.1), profile=[0, 0, 0])
    open_position(sb, arr([1.0], [-1.0], [2.0]))
    bar = np.full((3, 1), 100.0)
    exit_, price, kind = sb.check(arr([1.0], [-1.0], [2.0]), bar, bar + 4, bar - 4)
    assert not exit_.any() and np.isnan(price).all() and not kind.any()
    assert exit_.shape == price.shape == kind.shape == (3, 1) and kind.dtype == np.int8
    assert all(c.sum() == 0 for c in sb.counts.values())
