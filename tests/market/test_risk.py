import re

import numpy as np
import pytest

from adan.errors import ConfigError
from adan.market.risk import (
    RULES,
    HedgeConfig,
    RiskConfig,
    RiskManager,
    TierConfig,
    default_tiers,
    rolling_beta,
)

ASSETS = ("A", "B", "C")


def manager(*configs, profile=None, n=4, close=None, day=None, assets=ASSETS):
    configs = configs or (RiskConfig(),)
    if close is None:
        rng = np.random.default_rng(0)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (200, len(assets))), axis=0))
    if day is None:
        day = np.arange(len(close)) // 24
    if profile is None:
        profile = np.zeros(n, dtype=np.int64)
    return RiskManager(configs, np.asarray(profile), assets, close, day)


def apply(rm, w, t=10, equity=10_000.0, drawdown=0.0, cap=None):
    n = rm.num_envs
    return rm.apply(
        np.asarray(w, dtype=np.float64),
        np.full(n, t),
        np.broadcast_to(np.asarray(equity, dtype=np.float64), (n,)),
        np.broadcast_to(np.asarray(drawdown, dtype=np.float64), (n,)),
        cap,
    )


def only_breached(rm, rule, rows):
    for name in RULES:
        expected = rows if name == rule else np.zeros_like(rows)
        assert (rm.breached[name] == expected).all(), name


def test_no_limits_is_identity_and_returns_a_new_array():
    rm = manager(n=3)
    w = np.array([[0.5, -0.3, 0.2], [0.0, 0.0, 0.0], [-1.0, 1.0, 1.0]])
    out = apply(rm, w)
    assert out is not w and np.array_equal(out, w)
    assert all(c.sum() == 0 for c in rm.clips.values())


def test_max_position_clips_each_asset_and_counts():
    rm = manager(RiskConfig(max_position=0.3), n=2)
    w = np.array([[0.5, -0.6, 0.1], [0.2, -0.3, 0.1]])
    out = apply(rm, w)
    np.testing.assert_allclose(out, [[0.3, -0.3, 0.1], [0.2, -0.3, 0.1]])
    only_breached(rm, "max_position", np.array([True, False]))
    apply(rm, w)
    assert rm.clips["max_position"].tolist() == [2, 0]


def test_max_gross_scales_the_book_and_exposure_cap_is_tighter_of_both():
    rm = manager(RiskConfig(max_gross=1.0), n=3)
    w = np.array([[0.8, -0.8, 0.4], [0.3, 0.3, 0.3], [0.3, 0.3, 0.3]])
    out = apply(rm, w, cap=np.array([5.0, 5.0, 0.45]))
    np.testing.assert_allclose(out[0], w[0] / 2.0)
    np.testing.assert_allclose(out[1], w[1])
    np.testing.assert_allclose(np.abs(out[2]).sum(), 0.45)
    only_breached(rm, "max_gross", np.array([True, False, True]))


def test_max_net_scales_uniformly_to_the_limit():
    rm = manager(RiskConfig(max_net=0.2), n=3)
    w = np.array([[0.6, -0.2, 0.0], [-0.5, 0.1, 0.0], [0.5, -0.4, 0.05]])
    out = apply(rm, w)
    np.testing.assert_allclose(out[0], w[0] * 0.5)  # net 0.4 -> 0.2
    np.testing.assert_allclose(out[1], w[1] * 0.5)  # net -0.4 -> -0.2
    np.testing.assert_allclose(out[2], w[2])
    np.testing.assert_allclose(np.abs(out.sum(axis=1)), [0.2, 0.2, 0.15])
    only_breached(rm, "max_net", np.array([True, True, False]))


@pytest.mark.parametrize("num_assets", [2, 3, 5, 8])
def test_concentration_is_exact_for_random_books(num_assets):
    rng = np.random.default_rng(num_assets)
    n = 400
    assets = tuple(f"X{i}" for i in range(num_assets))
    limits = np.concatenate([[1.0 / num_assets, 1.0 / num_assets + 1e-3], rng.uniform(0, 1, 8)])
    limits = np.maximum(limits, 1.0 / num_assets)
    configs = [RiskConfig(max_concentration=float(c)) for c in limits]
    profile = rng.integers(0, len(configs), n)
    rm = manager(*configs, profile=profile, assets=assets)
    w = rng.normal(0, 1, (n, num_assets)) * (rng.uniform(size=(n, num_assets)) < 0.8)
    out = apply(rm, w)
    limit = limits[profile]
    gross = np.abs(out).sum(axis=1)
    share = np.abs(out).max(axis=1) / np.where(gross > 0, gross, 1.0)
    assert (share <= limit + 1e-9).all()
    # Only shrinks, never flips, and leaves small positions alone.
    assert (np.abs(out) <= np.abs(w) + 1e-15).all() and (out * w >= 0).all()
    cap = np.abs(out).max(axis=1, keepdims=True)
    untouched = np.abs(w) < cap - 1e-12
    assert np.array_equal(out[untouched], w[untouched])
    # Rows that were over the limit end exactly at it (the smallest change), except the
    # degenerate 1/A case with a zero position, which can only be met by flattening.
    was_over = np.abs(w).max(axis=1) > limit * np.abs(w).sum(axis=1)
    assert was_over.any()
    assert np.array_equal(rm.breached["max_concentration"], was_over)
    at_limit = was_over & (gross > 0)
    np.testing.assert_allclose(share[at_limit], limit[at_limit], rtol=1e-9)


def test_concentration_off_for_a_single_asset_and_bad_limit_for_a_raises():
    rm = manager(RiskConfig(max_concentration=0.5), n=1, assets=("A",))
    assert np.array_equal(apply(rm, [[0.7]]), [[0.7]])
    with pytest.raises(ConfigError, match=r"trading\.risk\.max_concentration must be >= 1/A"):
        manager(RiskConfig(max_concentration=0.2), n=1)


def test_kill_switch_flattens_and_stays_killed_until_reset():
    rm = manager(RiskConfig(max_drawdown=0.2), n=2)
    w = np.full((2, 3), 0.2)
    out = apply(rm, w, drawdown=np.array([0.25, 0.1]))
    assert np.array_equal(out[0], np.zeros(3)) and np.array_equal(out[1], w[1])
    assert rm.killed.tolist() == [True, False]
    only_breached(rm, "kill_switch", np.array([True, False]))
    # The drawdown recovering does not revive it.
    for t in range(11, 15):
        assert np.array_equal(apply(rm, w, t=t, drawdown=0.0)[0], np.zeros(3))
    assert rm.clips["kill_switch"].tolist() == [5, 0]
    rm.reset_envs(np.array([True, False]), np.full(2, 10_000.0), np.full(2, 20))
    assert not rm.killed.any()
    np.testing.assert_array_equal(apply(rm, w, t=21), w)
    assert rm.summary()["risk/killed"] == 0.0 and rm.summary()["risk/clips_kill_switch"] == 5


def test_daily_loss_flattens_until_the_next_utc_day():
    day = np.repeat(np.arange(10), 24)  # 24 bars a day
    close = np.full((len(day), 3), 100.0)
    rm = manager(RiskConfig(daily_loss=0.05), n=2, close=close, day=day)
    rm.reset_envs(np.ones(2, bool), np.full(2, 1000.0), np.full(2, 26))  # day 1 opens at 1000
    w = np.full((2, 3), 0.3)
    assert np.array_equal(apply(rm, w, t=27, equity=np.array([960.0, 1040.0])), w)
    out = apply(rm, w, t=28, equity=np.array([949.0, 990.0]))  # env 0 lost > 5 %
    assert np.array_equal(out[0], np.zeros(3)) and np.array_equal(out[1], w[1])
    only_breached(rm, "daily_loss", np.array([True, False]))
    # Recovering within the day does not lift the halt.
    assert np.array_equal(apply(rm, w, t=47, equity=np.array([1100.0, 990.0]))[0], np.zeros(3))
    # First bar of day 2: the day re-opens at that bar's equity and trading resumes.
    out = apply(rm, w, t=48, equity=np.array([900.0, 990.0]))
    assert np.array_equal(out, w)
    np.testing.assert_allclose(rm.day_start_equity, [900.0, 990.0])
    out = apply(rm, w, t=49, equity=np.array([860.0, 941.0]))  # env 1: -4.95 %, env 0: -4.4 %
    assert np.array_equal(out, w)
    out = apply(rm, w, t=50, equity=np.array([850.0, 940.0]))  # both over 5 %
    assert not out.any() and rm.clips["daily_loss"].tolist() == [3, 1]


def test_tiers_switch_with_equity_and_apply_with_the_tighter_limit():
    tiers = [
        TierConfig("small", 0.0, max_position=0.8, risk_per_trade=0.04, max_gross=1.0),
        TierConfig("big", 1000.0, max_position=0.3, risk_per_trade=0.01, max_gross=0.5),
    ]
    rm = manager(RiskConfig(tiers=tiers, max_position=0.6), n=3)
    equity = np.array([500.0, 1000.0, 5000.0])
    assert rm.tier_index(equity).tolist() == [0, 1, 1]
    np.testing.assert_allclose(rm.risk_per_trade(equity), [0.04, 0.01, 0.01])
    w = np.array([[0.9, 0.0, 0.0], [0.9, 0.0, 0.0], [0.2, -0.2, 0.2]])
    out = apply(rm, w, equity=equity)
    np.testing.assert_allclose(out[0], [0.6, 0, 0])  # tier 0.8, then max_position 0.6
    np.testing.assert_allclose(out[1], [0.3, 0, 0])  # big tier 0.3 < 0.6
    np.testing.assert_allclose(np.abs(out[2]).sum(), 0.5)  # big tier max_gross
    assert rm.breached["tier"].tolist() == [True, True, True]
    assert rm.breached["max_position"].tolist() == [True, False, False]
    # Equity falling back moves env 1 down a tier.
    assert rm.tier_index(np.array([500.0, 999.0, 1e6])).tolist() == [0, 0, 1]


def test_no_tiers_and_default_tiers():
    rm = manager(n=2)
    assert rm.risk_per_trade(np.ones(2)) is None and rm.tier_index(np.ones(2)).tolist() == [-1, -1]
    tiers = default_tiers()
    assert [t.name for t in tiers] == ["micro", "small", "medium", "high", "enterprise"]
    assert [t.min_equity for t in default_tiers(scale=1.0)] == [0, 30, 100, 300, 1000]
    rm = manager(RiskConfig(tiers=tiers), RiskConfig(), profile=[0, 1])
    assert rm.tier_index(np.array([10_000.0, 10_000.0])).tolist() == [2, -1]
    rpt = rm.risk_per_trade(np.array([10_000.0, 10_000.0]))
    assert rpt[0] == tiers[2].risk_per_trade and np.isnan(rpt[1])


def test_profiles_are_vectorised():
    configs = (RiskConfig(max_position=0.2), RiskConfig(max_gross=0.5))
    rm = manager(*configs, profile=[0, 1, 0, 1])
    w = np.tile([[0.4, 0.4, 0.0]], (4, 1))
    out = apply(rm, w)
    np.testing.assert_allclose(out, [[0.2, 0.2, 0], [0.25, 0.25, 0]] * 2)
    assert rm.breached["max_position"].tolist() == [True, False, True, False]
    assert rm.breached["max_gross"].tolist() == [False, True, False, True]


def correlated_market(num_bars=3000, betas=(1.5, 0.7), seed=1):
    rng = np.random.default_rng(seed)
    r_h = rng.normal(0, 0.01, num_bars)
    cols = [b * r_h + rng.normal(0, 0.005, num_bars) for b in betas] + [r_h]
    return 100 * np.exp(np.cumsum(np.stack(cols, axis=1), axis=0))


def realised_beta(book_returns, hedge_returns):
    return np.cov(book_returns, hedge_returns)[0, 1] / np.var(hedge_returns, ddof=1)


def test_rolling_beta_is_causal_and_recovers_the_known_beta():
    close = correlated_market()
    beta = rolling_beta(close, hedge=2, window=168)
    np.testing.assert_allclose(beta[500:, 0].mean(), 1.5, atol=0.05)
    np.testing.assert_allclose(beta[500:, 1].mean(), 0.7, atol=0.05)
    np.testing.assert_allclose(beta[500:, 2], 1.0)
    assert (beta[:84] == 0).all()  # warm-up: fewer than window // 2 returns
    changed = close.copy()
    changed[1000:] *= np.exp(np.random.default_rng(5).normal(0, 0.05, changed[1000:].shape))
    assert np.array_equal(rolling_beta(changed, 2, 168)[:1000], beta[:1000])


def test_hedge_makes_the_book_beta_neutral():
    close = correlated_market()
    num_bars, n = len(close), 8
    rng = np.random.default_rng(2)
    w = np.zeros((n, 3))
    w[:, :2] = rng.uniform(0.1, 0.5, (n, 2))
    rm = manager(
        RiskConfig(hedge=HedgeConfig(asset="H", window=168)),
        n=n,
        close=close,
        assets=("A", "B", "H"),
    )
    start = 300
    ret = np.diff(np.log(close), axis=0)  # ret[t] = return of bar t+1
    hedged = np.stack([apply(rm, w, t=t) for t in range(start, num_bars - 1)])  # [T', N, A]
    assert np.array_equal(hedged[:, :, :2], np.broadcast_to(w[:, :2], hedged[:, :, :2].shape))
    assert (hedged[:, :, 2] != 0).all()
    future = ret[start:]  # returns of the bars the weights are held over
    for i in range(n):
        book_hedged = (hedged[:, i] * future).sum(axis=1)
        book_plain = future @ w[i]
        assert abs(realised_beta(book_hedged, future[:, 2])) < 0.1
        assert abs(realised_beta(book_plain, future[:, 2])) > 0.1
    assert all(c.sum() == 0 for c in rm.clips.values())


def test_unknown_hedge_asset_raises_naming_the_key():
    with pytest.raises(ConfigError, match=r"trading\.risk\.hedge\.asset must be one of"):
        manager(RiskConfig(hedge=HedgeConfig(asset="ZZZ")))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_position": 0}, "trading.risk.max_position must be > 0, got 0.0"),
        ({"max_gross": -1.0}, "trading.risk.max_gross must be > 0"),
        ({"max_net": "big"}, "trading.risk.max_net must be a number or null"),
        ({"max_concentration": 1.5}, "trading.risk.max_concentration must be in (0, 1]"),
        ({"daily_loss": 1.0}, "trading.risk.daily_loss must be in (0, 1)"),
        ({"max_drawdown": float("nan")}, "trading.risk.max_drawdown must be finite"),
        ({"tiers": []}, "trading.risk.tiers must be null or non-empty"),
        (
            {"tiers": [TierConfig(min_equity=10.0), TierConfig(min_equity=5.0)]},
            "trading.risk.tiers min_equity must be strictly increasing",
        ),
        ({"tiers": [{"max_position": -1}]}, "trading.risk.tiers.max_position must be > 0"),
        ({"hedge": {"window": 1}}, "trading.risk.hedge.window must be an integer >= 2"),
    ],
)
def test_bad_config_raises_naming_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        RiskConfig(**kwargs)


def test_bad_tier_raises_naming_the_key():
    with pytest.raises(ConfigError, match=re.escape("trading.risk.tiers.risk_per_trade")):
        TierConfig(risk_per_trade=2.0)


def test_state_dict_round_trip_continues_identically():
    cfg = RiskConfig(max_drawdown=0.2, daily_loss=0.05, max_position=0.3)

    def run(rm, steps, t0):
        outs = []
        for t in range(t0, t0 + steps):
            w = rng_w.normal(0, 0.5, (4, 3))
            eq = 10_000 * (1 + rng_w.normal(0, 0.03, 4))
            outs.append(apply(rm, w, t=t, equity=eq, drawdown=rng_w.uniform(0, 0.21, 4)))
        return np.stack(outs)

    a = manager(cfg, n=4)
    rng_w = np.random.default_rng(4)
    run(a, 30, 0)
    state = a.state_dict()
    rng_state = rng_w.bit_generator.state
    first = run(a, 30, 30)
    b = manager(cfg, n=4)
    b.load_state_dict(state)
    rng_w.bit_generator.state = rng_state
    second = run(b, 30, 30)
    assert np.array_equal(first, second)
    for key, value in a.state_dict().items():
        assert np.array_equal(value, b.state_dict()[key]), key


def test_schema_composes_with_omegaconf():
    from omegaconf import OmegaConf

    yaml = {"max_position": 1, "tiers": [{"name": "a"}, {"name": "b", "min_equity": 100}]}
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RiskConfig), yaml))
    assert cfg.max_position == 1.0 and [t.min_equity for t in cfg.tiers] == [0.0, 100.0]
    assert isinstance(cfg.hedge, HedgeConfig) and cfg.hedge.asset is None


def test_all_limits_hold_at_once_on_random_books():
    cfg = RiskConfig(max_position=0.4, max_gross=1.2, max_net=0.3, max_concentration=0.45)
    rng = np.random.default_rng(7)
    rm = manager(cfg, n=500)
    w = rng.normal(0, 0.8, (500, 3))
    out = apply(rm, w, cap=rng.uniform(0.5, 2.0, 500))
    gross = np.abs(out).sum(axis=1)
    assert (np.abs(out) <= 0.4 + 1e-12).all() and (gross <= 1.2 + 1e-12).all()
    assert (np.abs(out.sum(axis=1)) <= 0.3 + 1e-12).all()
    assert (np.abs(out).max(axis=1) <= 0.45 * gross + 1e-12).all()
    assert (np.abs(out) <= np.abs(w)).all() and (out * w >= 0).all()


def reference_limits(w, tier_pos, tier_gross, max_position, max_net, max_conc, cap):
    """Tier -> max_position -> concentration -> max_net -> max_gross on every row (no row
    skipped), the order ``apply`` documents; returns the book and each rule's changed rows."""
    w = w.copy()
    changed = {}

    def scale(limit):
        gross = np.abs(w).sum(axis=1)
        over = gross > limit
        w[over] *= (limit[over] / gross[over])[:, None]
        return over

    before = w.copy()
    np.clip(w, -tier_pos[:, None], tier_pos[:, None], out=w)
    scale(tier_gross)
    changed["tier"] = (w != before).any(axis=1)
    before = w.copy()
    np.clip(w, -max_position[:, None], max_position[:, None], out=w)
    changed["max_position"] = (w != before).any(axis=1)
    before = w.copy()
    for i in range(len(w)):  # the largest cap x with max |w| <= limit * sum min(|w|, x)
        mag = np.abs(w[i])
        if mag.sum() > 0 and mag.max() > max_conc[i] * mag.sum():
            s = np.sort(mag)[::-1]
            tails = np.append(np.cumsum(s[::-1])[::-1], 0.0)
            bounds = [max_conc[i] * tails[k] / (1 - k * max_conc[i])
                      for k in range(len(s) + 1) if 1 - k * max_conc[i] > 1e-12]  # fmt: skip
            x = min(bounds)
            w[i] = np.clip(w[i], -x, x)
    changed["max_concentration"] = (w != before).any(axis=1)
    net = np.abs(w.sum(axis=1))
    over = net > max_net
    w[over] *= (max_net[over] / net[over])[:, None]
    changed["max_net"] = over
    changed["max_gross"] = scale(cap)
    return w, changed


@pytest.mark.parametrize("num_assets", [2, 3])
def test_apply_matches_every_rule_on_every_row(num_assets):
    # Rows within every limit skip the rules: the result and the counters must be exactly
    # those of running each rule on every row, for mixed profiles and exposure caps.
    tiers = default_tiers(scale=1.0)
    configs = (
        RiskConfig(max_position=0.8, max_gross=1.0, tiers=tiers),
        RiskConfig(max_position=0.5, max_net=0.3, max_concentration=0.6, max_gross=1.2),
        RiskConfig(),
    )
    rng = np.random.default_rng(num_assets)
    n = 600
    profile = rng.integers(0, 3, n)
    assets = tuple(f"X{i}" for i in range(num_assets))
    rm = manager(*configs, profile=profile, assets=assets)
    clips = {rule: np.zeros(n, dtype=np.int64) for rule in RULES}
    for step in range(4):
        w = rng.normal(0, 0.4, (n, num_assets)) * (rng.uniform(size=(n, num_assets)) < 0.8)
        w[rng.uniform(size=(n, num_assets)) < 0.05] = 0.5  # exactly at a limit
        equity = rng.choice([10.0, 30.0, 99.0, 100.0, 500.0, 5000.0], n)
        cap = None if step == 0 else rng.choice([0.5, 1.0, 1.1, 3.0], n)
        idx = np.array([max(0, sum(t.min_equity <= e for t in tiers) - 1) for e in equity])
        tiered = profile == 0
        tier_pos = np.where(tiered, [tiers[i].max_position for i in idx], np.inf)
        tier_gross = np.where(tiered, [tiers[i].max_gross for i in idx], np.inf)
        limit = {
            "max_position": np.array([0.8, 0.5, np.inf])[profile],
            "max_net": np.array([np.inf, 0.3, np.inf])[profile],
            "max_conc": np.array([np.inf, 0.6, np.inf])[profile],
        }
        gross = np.array([1.0, 1.2, np.inf])[profile]
        gross = gross if cap is None else np.minimum(gross, cap)
        expected, changed = reference_limits(w, tier_pos, tier_gross, **limit, cap=gross)
        assert np.array_equal(rm.tier_index(equity), np.where(tiered, idx, -1))
        out = apply(rm, w, equity=equity, cap=cap)
        assert np.array_equal(out, expected)
        for rule, rows in changed.items():
            assert np.array_equal(rm.breached[rule], rows), rule
            clips[rule] += rows
    for rule in RULES:
        assert np.array_equal(rm.clips[rule], clips[rule]), rule
    for rule in ("tier", "max_position", "max_concentration", "max_net", "max_gross"):
        assert 0 < (clips[rule] > 0).sum() < n / 2, rule  # each rule binds, on some rows


def test_tier_at_extreme_equity_is_the_first_or_the_profiles_last():
    short = [TierConfig("a", 0.0, 0.9, 0.04), TierConfig("b", 100.0, 0.5, 0.02)]
    rm = manager(RiskConfig(tiers=default_tiers(scale=1.0)), RiskConfig(tiers=short), n=6,
                 profile=[0, 1, 0, 1, 0, 1])  # fmt: skip
    equity = np.array([np.inf, np.inf, -np.inf, -5.0, np.nan, np.nan])
    assert rm.tier_index(equity).tolist() == [4, 1, 0, 0, 0, 0]
    np.testing.assert_array_equal(rm.risk_per_trade(equity), [0.015, 0.02, 0.04, 0.04, 0.04, 0.04])
    out = apply(rm, np.tile([0.95, 0.0, 0.0], (6, 1)), equity=equity)
    np.testing.assert_array_equal(out[:, 0], [0.2, 0.5, 0.9, 0.9, 0.9, 0.9])  # tier max_position
