"""The Dynamic Behaviour Engine: regime tables, smoothing, performance modifiers, bounds,
profiles, errors and checkpoints."""

import logging

import numpy as np
import pytest
from omegaconf import OmegaConf

from adan.data.regimes import BEAR, BULL, REGIME_NAMES, SIDEWAYS, VOLATILE
from adan.errors import ConfigError
from adan.market.behaviour import (
    PARAMS,
    BehaviourConfig,
    BehaviourError,
    DynamicBehaviourEngine,
    RegimeParams,
)

BPY = 10_000.0
TABLE = {
    "bull": RegimeParams(size=1.2, stop=1.0, target=1.5, exposure=1.0),
    "bear": RegimeParams(size=0.6, stop=0.8, target=0.7, exposure=0.5),
    "sideways": RegimeParams(size=0.8, stop=0.6, target=0.6, exposure=0.8),
    "volatile": RegimeParams(size=0.4, stop=1.8, target=5.0, exposure=0.3),  # target > max
}


def config(**kw) -> BehaviourConfig:
    kw.setdefault("regimes", {k: RegimeParams(**vars(v)) for k, v in TABLE.items()})
    return BehaviourConfig(enabled=True, **kw)


def engine(configs, profile=None, n=4) -> DynamicBehaviourEngine:
    configs = configs if isinstance(configs, list) else [configs]
    profile = np.zeros(n, dtype=int) if profile is None else np.asarray(profile)
    return DynamicBehaviourEngine(configs, profile, bars_per_year=BPY)


def quiet(dbe, regime, steps, drawdown=0.0, net_return=0.0, holding=False):
    """``steps`` updates with constant inputs that leave the performance modifiers at 1."""
    n = dbe.num_envs
    regime = np.broadcast_to(np.asarray(regime, dtype=np.int64), (n,))
    drawdown = np.broadcast_to(np.asarray(drawdown, dtype=np.float64), (n,))
    net_return = np.broadcast_to(np.asarray(net_return, dtype=np.float64), (n,))
    holding = np.broadcast_to(np.asarray(holding, dtype=bool), (n,))
    history = []
    for _ in range(steps):
        out = dbe.update(regime, drawdown, net_return, holding)
        history.append({k: v.copy() for k, v in out.items()})
    return history


def expected(cfg, regime_name, name):
    value = getattr(cfg.regimes[regime_name], name)
    return np.clip(value, getattr(cfg, f"{name}_min"), getattr(cfg, f"{name}_max"))


def test_every_regime_converges_to_its_table_value_within_bounds():
    cfg = config()
    dbe = engine(cfg)
    regimes = np.array([BULL, BEAR, SIDEWAYS, VOLATILE])
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    quiet(dbe, regimes, 250)  # 0.9 ** 250 ~ 4e-12 of the initial gap is left
    for env, code in enumerate(regimes):
        for name in PARAMS:
            want = expected(cfg, REGIME_NAMES[code], name)
            assert dbe.params[name][env] == pytest.approx(want, abs=1e-9), (env, name)
    assert dbe.params["target"][3] == pytest.approx(cfg.target_max)  # the table's 5.0, clipped


def test_reset_starts_at_the_regime_table_without_smoothing_and_clears_stats():
    cfg = config()
    dbe = engine(cfg)
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    quiet(dbe, BULL, 50, drawdown=0.15, net_return=-0.01, holding=True)
    assert dbe.params["size"][0] < 0.5  # drawdown and losses shrank it
    mask = np.array([True, False, True, False])
    before = {k: v.copy() for k, v in dbe.params.items()}
    dbe.reset_envs(mask, np.array([VOLATILE, VOLATILE, BEAR, BEAR]))
    assert dbe.params["size"][0] == TABLE["volatile"].size
    assert dbe.params["stop"][2] == TABLE["bear"].stop
    for name in PARAMS:  # the others are untouched
        np.testing.assert_array_equal(dbe.params[name][~mask], before[name][~mask])
    np.testing.assert_array_equal(dbe.win_rate[mask], cfg.win_rate_ref)
    np.testing.assert_array_equal(dbe.count[mask], 0)
    assert (dbe.count[~mask] == 50).all()


def test_a_regime_switch_moves_params_monotonically_at_the_smoothing_rate():
    cfg = config(smoothing=0.2)
    dbe = engine(cfg)
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    quiet(dbe, BULL, 5)
    assert dbe.changes()["dbe/regime_switches"] == 0
    history = quiet(dbe, VOLATILE, 30)
    assert dbe.transitions[BULL, VOLATILE] == 4 and dbe.transitions.sum() == 4
    for name in PARAMS:
        start, end = expected(cfg, "bull", name), expected(cfg, "volatile", name)
        path = np.array([h[name][0] for h in history])
        k = np.arange(1, 31)
        np.testing.assert_allclose(path, end + (start - end) * 0.8**k, rtol=0, atol=1e-12)
        steps = np.diff(np.concatenate([[start], path]))
        assert (np.sign(steps) == np.sign(end - start)).all(), name  # monotone, no overshoot
        assert abs(path[0] - start) == pytest.approx(0.2 * abs(end - start))  # not a jump
    assert dbe.changes()["dbe/regime_switches"] == 0  # only the first bar switched


def test_drawdown_shrinks_size_linearly_to_size_min_at_drawdown_ref():
    cfg = config(drawdown_ref=0.2, size_min=0.1)
    dbe = engine(cfg)
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    quiet(dbe, BULL, 300, drawdown=np.array([0.0, 0.1, 0.2, 0.6]))
    size = TABLE["bull"].size
    np.testing.assert_allclose(
        dbe.params["size"], [size, size + (0.1 - size) * 0.5, 0.1, 0.1], atol=1e-9
    )
    for name in ("stop", "target", "exposure"):  # only size reacts to performance
        np.testing.assert_allclose(dbe.params[name], expected(cfg, "bull", name), atol=1e-9)


def test_a_low_recent_win_rate_shrinks_size():
    cfg = config(win_rate_ref=0.5, perf_rate=0.02, vol_ref=0.0, size_min=0.05)
    dbe = engine(cfg, n=3)
    dbe.reset_envs(np.ones(3, bool), np.full(3, SIDEWAYS))
    table = TABLE["sideways"].size
    # env 0 wins every bar, env 1 wins one bar in four, env 2 loses but holds nothing.
    pattern = np.array([[0.01, 0.01, -0.01], [-0.01, -0.01, -0.01]])
    for step in range(1200):
        ret = pattern[0] if step % 4 == 0 else pattern[1] * np.array([-1, 1, 1])
        dbe.update(np.full(3, SIDEWAYS), np.zeros(3), ret, np.array([True, True, False]))
    assert dbe.win_rate[0] > 0.99 and dbe.params["size"][0] == pytest.approx(table)
    assert dbe.win_rate[1] == pytest.approx(0.25, abs=0.02)
    assert dbe.params["size"][1] == pytest.approx(table * 0.5, abs=0.05)
    assert dbe.win_rate[2] == 0.5 and dbe.params["size"][2] == pytest.approx(table)


def test_high_realised_volatility_scales_size_by_vol_ref_over_vol():
    cfg = config(vol_ref=0.8, win_rate_ref=0.0)
    dbe = engine(cfg, n=2)
    dbe.reset_envs(np.ones(2, bool), np.full(2, BULL))
    x = 2 * 0.8 / np.sqrt(BPY)  # per-bar |return| of an account at twice vol_ref
    for step in range(300):
        sign = 1 if step % 2 else -1
        dbe.update(np.full(2, BULL), np.zeros(2), sign * np.array([x, x / 4]), np.ones(2, bool))
    np.testing.assert_allclose(
        dbe.params["size"], [TABLE["bull"].size * 0.5, TABLE["bull"].size], rtol=1e-9
    )


def test_bounds_and_finiteness_hold_under_extreme_inputs():
    cfg = config(smoothing=1.0, perf_rate=1.0)
    dbe = engine(cfg, n=8)
    rng = np.random.default_rng(0)
    dbe.reset_envs(np.ones(8, bool), rng.integers(0, 4, 8))
    extremes = np.array([-5.0, 0.0, 1.0, 10.0, 1e300, -1e300, 1e-300, -1.0])
    for _ in range(50):
        dbe.update(
            rng.integers(0, 4, 8),
            rng.permutation(extremes),
            rng.permutation(extremes),
            rng.random(8) < 0.5,
        )
        for name in PARAMS:
            p = dbe.params[name]
            assert np.isfinite(p).all()
            lo, hi = getattr(cfg, f"{name}_min"), getattr(cfg, f"{name}_max")
            assert (p >= lo).all() and (p <= hi).all(), name


def test_two_profiles_run_vectorised_and_match_separate_engines():
    other = config(
        regimes={
            "bull": {"size": 0.9, "stop": 1.3},
            "bear": {"size": 0.3, "exposure": 0.2},
            "sideways": {},
            "volatile": {"size": 0.2, "target": 2.0},
        },
        smoothing=0.3,
        drawdown_ref=0.1,
    )
    configs = [config(), other]
    profile = np.array([0, 1, 1, 0, 1, 0])
    both = engine(configs, profile)
    alone = [engine(c, n=int((profile == p).sum())) for p, c in enumerate(configs)]
    rng = np.random.default_rng(1)
    regime = rng.integers(0, 4, 6)
    both.reset_envs(np.ones(6, bool), regime)
    for p, dbe in enumerate(alone):
        dbe.reset_envs(np.ones(dbe.num_envs, bool), regime[profile == p])
    for _ in range(60):
        regime = np.where(rng.random(6) < 0.1, rng.integers(0, 4, 6), regime)
        inputs = (regime, rng.uniform(0, 0.3, 6), rng.normal(0, 0.01, 6), rng.random(6) < 0.7)
        both.update(*inputs)
        for p, dbe in enumerate(alone):
            dbe.update(*(x[profile == p] for x in inputs))
            for name in PARAMS:
                np.testing.assert_array_equal(both.params[name][profile == p], dbe.params[name])
    assert both.params["stop"][profile == 1].max() > 1.0  # profile 1's own table is used


def test_disabled_profile_keeps_every_param_at_one():
    profile = np.array([0, 1, 0, 1])
    dbe = engine([BehaviourConfig(), config()], profile)
    dbe.reset_envs(np.ones(4, bool), np.full(4, VOLATILE))
    quiet(dbe, VOLATILE, 20, drawdown=0.5, net_return=-0.05, holding=True)
    for name in PARAMS:
        np.testing.assert_array_equal(dbe.params[name][profile == 0], 1.0)
        assert (dbe.params[name][profile == 1] != 1.0).all()


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("drawdown", np.array([0.0, np.nan, 0.0, 0.0]), r"drawdown is not finite at envs \[1\]"),
        ("net_return", np.array([0.0, 0.0, 0.0, np.inf]), r"net_return .* envs \[3\]"),
        ("regime", np.array([0, 1, 4, 0]), r"regime is out of range .* envs \[2\]"),
        ("regime", np.array([0, -1, 0, 0]), r"envs \[1\]"),
        ("regime", np.array([0.0, 1.0, 0.0, 0.0]), "int codes"),
        ("holding", np.zeros(3, bool), r"holding has shape \(3,\)"),
    ],
)
def test_invalid_inputs_raise_naming_the_envs_and_change_nothing(field, value, match):
    dbe = engine(config())
    dbe.reset_envs(np.ones(4, bool), np.full(4, BEAR))
    quiet(dbe, BEAR, 3)
    state = dbe.state_dict()
    inputs = {
        "regime": np.zeros(4, dtype=int),
        "drawdown": np.zeros(4),
        "net_return": np.zeros(4),
        "holding": np.zeros(4, bool),
    }
    inputs[field] = value
    with pytest.raises(BehaviourError, match=match):
        dbe.update(**inputs)
    for key, array in dbe.state_dict().items():
        np.testing.assert_array_equal(array, state[key])
    with pytest.raises(BehaviourError, match="out of range"):
        dbe.reset_envs(np.ones(4, bool), np.array([0, 0, 9, 0]))


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    inputs = [
        (rng.integers(0, 4, 5), rng.uniform(0, 0.3, 5), rng.normal(0, 0.01, 5), rng.random(5) < 0.6)
        for _ in range(80)
    ]
    first = engine([config(), config(smoothing=0.5)], np.array([0, 1, 0, 1, 1]))
    first.reset_envs(np.ones(5, bool), inputs[0][0])
    for x in inputs[:40]:
        first.update(*x)
    state = first.state_dict()
    second = engine([config(), config(smoothing=0.5)], np.array([0, 1, 0, 1, 1]))
    second.load_state_dict(state)
    state["size"][:] = -1.0  # the engine owns copies
    for x in inputs[40:]:
        a, b = first.update(*x), second.update(*x)
        for name in PARAMS:
            np.testing.assert_array_equal(a[name], b[name])
        assert first.changes() == second.changes()
    np.testing.assert_array_equal(first.transitions, second.transitions)


def test_changes_report_means_and_mean_absolute_change(caplog):
    dbe = engine(config())
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    with caplog.at_level(logging.DEBUG, logger="adan.market.behaviour"):
        quiet(dbe, np.array([BULL, BULL, BEAR, BEAR]), 1)
    assert len(caplog.records) == 1 and "switches=2" in caplog.text
    stats = dbe.changes()
    assert set(stats) == {f"dbe/{p}" for p in PARAMS} | {f"dbe/{p}_change" for p in PARAMS} | {
        "dbe/regime_switches"
    }
    step = 0.1 * (TABLE["bear"].size - TABLE["bull"].size)
    assert stats["dbe/size_change"] == pytest.approx(abs(step) / 2)
    assert stats["dbe/size"] == pytest.approx(TABLE["bull"].size + step / 2)
    assert stats["dbe/regime_switches"] == 2


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"smoothing": 0.0}, "trading.dbe.smoothing"),
        ({"perf_rate": 1.5}, "trading.dbe.perf_rate"),
        ({"drawdown_ref": -0.1}, "trading.dbe.drawdown_ref"),
        ({"win_rate_ref": 1.2}, "trading.dbe.win_rate_ref"),
        ({"size_min": 0.0}, "trading.dbe.size_min"),
        ({"stop_min": 2.0, "stop_max": 1.0}, "trading.dbe.stop_max"),
        ({"vol_ref": float("nan")}, "trading.dbe.vol_ref"),
        ({"enabled": 1}, "trading.dbe.enabled"),
        ({"regimes": {"bull": {}, "bear": {}, "sideways": {}}}, "trading.dbe.regimes"),
        (
            {"regimes": {"bull": {"size": -1}, "bear": {}, "sideways": {}, "volatile": {}}},
            "trading.dbe.regimes.bull.size",
        ),
        (
            {"regimes": {"bull": {"sizee": 1}, "bear": {}, "sideways": {}, "volatile": {}}},
            "trading.dbe.regimes.bull",
        ),
    ],
)
def test_bad_config_values_name_the_full_key(kw, key):
    enabled = kw.pop("enabled", True)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + " "):
        BehaviourConfig(enabled=enabled, **kw)


def test_config_works_as_a_structured_config_schema():
    base = OmegaConf.structured(BehaviourConfig)
    assert set(base.regimes) == set(REGIME_NAMES)
    yaml = "enabled: true\nsmoothing: 1\nregimes:\n  volatile:\n    size: 1\n    stop: 2.5\n"
    cfg = OmegaConf.to_object(OmegaConf.merge(base, OmegaConf.create(yaml)))
    assert isinstance(cfg, BehaviourConfig) and cfg.enabled and cfg.smoothing == 1.0
    assert cfg.regimes["volatile"] == RegimeParams(size=1.0, stop=2.5, target=1.5, exposure=0.5)
    assert cfg.regimes["bull"] == BehaviourConfig().regimes["bull"]
    bad = OmegaConf.merge(base, {"regimes": {"volatile": {"size": -1.0}}})
    with pytest.raises(ValueError, match=r"trading\.dbe\.regimes\.volatile\.size"):
        OmegaConf.to_object(bad)


def test_modifiers_turned_off_in_one_profile_only_leave_its_size_at_the_table_value():
    off = config(win_rate_ref=0.0, vol_ref=0.0, drawdown_ref=0.0)
    profile = np.array([0, 1, 0, 1])
    dbe = engine([off, config(vol_ref=0.8, drawdown_ref=0.2)], profile)
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    rng = np.random.default_rng(3)
    for _ in range(300):  # deep drawdown, mostly losing and volatile bars
        ret = rng.normal(-0.02, 0.05, 4)
        dbe.update(np.full(4, BULL), np.full(4, 0.15), ret, np.ones(4, bool))
    np.testing.assert_array_equal(dbe.params["size"][profile == 0], TABLE["bull"].size)
    assert (dbe.params["size"][profile == 1] < 0.5 * TABLE["bull"].size).all()


def test_updates_and_resets_hand_out_fresh_arrays():
    dbe = engine(config())
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    before = quiet(dbe, BULL, 1)[0]
    held = dict(dbe.params)  # the arrays, not copies
    quiet(dbe, VOLATILE, 3)
    dbe.reset_envs(np.array([True, False, False, True]), np.full(4, BEAR))
    for name in PARAMS:
        np.testing.assert_array_equal(held[name], before[name])


def test_reset_with_an_empty_mask_changes_nothing_but_still_checks_the_regime():
    dbe = engine(config())
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    quiet(dbe, BEAR, 3, drawdown=0.1, net_return=-0.01, holding=True)
    state = dbe.state_dict()
    dbe.reset_envs(np.zeros(4, bool), np.full(4, VOLATILE))
    for key, array in dbe.state_dict().items():
        np.testing.assert_array_equal(array, state[key])
    with pytest.raises(BehaviourError, match=r"out of range .* envs \[1\]"):
        dbe.reset_envs(np.zeros(4, bool), np.array([0, -2, 0, 0]))


def test_a_non_finite_output_raises_naming_the_envs_and_changes_nothing():
    profile = np.array([0, 1, 0, 0])  # env 1 is disabled: its params are 1.0 whatever
    dbe = engine([config(), BehaviourConfig()], profile)
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    state = dbe.state_dict()
    state["stop"][1] = np.nan  # a corrupt checkpoint, in the disabled env: harmless
    dbe.load_state_dict(state)
    quiet(dbe, BULL, 1)
    assert dbe.params["stop"][1] == 1.0
    state = dbe.state_dict()
    state["stop"][2] = np.nan
    dbe.load_state_dict(state)
    with pytest.raises(BehaviourError, match=r"output stop is not finite at envs \[2\]"):
        quiet(dbe, BULL, 1)
    after = dbe.state_dict()
    for key, array in after.items():
        np.testing.assert_array_equal(array, state[key])


def test_the_debug_line_costs_nothing_while_debug_is_off(monkeypatch):
    dbe = engine(config())
    dbe.reset_envs(np.ones(4, bool), np.full(4, BULL))
    dbe.logger.setLevel(logging.INFO)
    try:

        def boom(*_):
            raise AssertionError("DEBUG line built while DEBUG is off")

        monkeypatch.setattr(dbe, "_log", boom)
        monkeypatch.setattr(dbe, "changes", boom)
        quiet(dbe, BEAR, 2)
    finally:
        dbe.logger.setLevel(logging.NOTSET)
