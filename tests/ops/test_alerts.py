"""The alert rules fire when they should and only then (the anomaly scores see no look-ahead),
cooldowns de-duplicate on an injected clock and count what they hold back, the config refuses
bad values naming the key, and state survives a restart without re-firing or forgetting."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from adan.errors import ConfigError, LiveConfigError, LiveDataError, StateMismatchError
from adan.ops.alerts import Alert, AlertManager, AlertsConfig, RuleConfig, robust_z


class Clock:
    """A settable clock: cooldowns are tested without sleeping."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def bar(time="2024-01-01T00:00:00", **kw) -> dict:
    """A quiet bar's metrics, overridden by ``kw``."""
    m = {
        "time": time,
        "equity": 100.0,
        "drawdown": 0.0,
        "bar_return": 0.0,
        "volume": [10.0],
        "assets": ["BTC"],
        "risk_clipped": False,
        "nan_features": False,
        "nan_actions": False,
    }
    m.update(kw)
    return m


def config(**rules) -> AlertsConfig:
    """Defaults with ``rules`` overridden; cooldowns 0 unless given, to isolate the rule."""
    spec = {n: {"cooldown_s": 0, **rules.get(n, {})} for n in AlertsConfig().rules}
    return AlertsConfig.from_mapping({"rules": spec})


def manager(cfg: AlertsConfig | None = None, clock=None, **kw) -> AlertManager:
    return AlertManager(cfg or config(), [], clock=clock or Clock(), **kw)


def rules_of(alerts: list[Alert]) -> list[str]:
    return [a.rule for a in alerts]


def hours(start: str, n: int) -> list[str]:
    t0 = np.datetime64(start, "s")
    return [str(t0 + np.timedelta64(i, "h")) for i in range(n)]


# ----------------------------------------------------------------------------- config
def test_defaults_round_trip_and_suit_hourly_bars():
    cfg = AlertsConfig.from_mapping({})
    assert cfg == AlertsConfig() == AlertsConfig.from_mapping(cfg.as_dict())
    assert json.loads(json.dumps(cfg.as_dict())) == cfg.as_dict()
    assert set(cfg.rules) == {
        "drawdown",
        "daily_loss",
        "limit_hit",
        "kill_switch",
        "stale_feed",
        "circuit_open",
        "nan",
        "anomalous_return",
        "anomalous_volume",
    }
    ar = cfg.rule("anomalous_return")
    assert (ar.z, ar.lookback, ar.min_history) == (6.0, 100, 30)
    assert cfg.rule("nan").severity == cfg.rule("kill_switch").severity == "critical"
    assert all(r.enabled and r.cooldown_s >= 1800 for r in cfg.rules.values())
    partial = AlertsConfig.from_mapping({"rules": {"drawdown": {"threshold": 0.2}}})
    assert partial.rule("drawdown") == RuleConfig(
        enabled=True, severity="warning", cooldown_s=21600.0, threshold=0.2
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"rules": {"drawdown": {"threshold": 2}}},
            "alerts.rules.drawdown.threshold must be in (0, 1], got 2",
        ),
        (
            {"rules": {"daily_loss": {"threshold": 0}}},
            "alerts.rules.daily_loss.threshold must be in (0, 1], got 0",
        ),
        (
            {"rules": {"drawdown": {"treshold": 0.1}}},
            "alerts.rules.drawdown.treshold is not a valid key; "
            "valid keys: cooldown_s, enabled, severity, threshold",
        ),
        (
            {"rules": {"limit_hit": {"threshold": 0.1}}},
            "alerts.rules.limit_hit.threshold is not a valid key; "
            "valid keys: cooldown_s, enabled, severity",
        ),
        ({"rules": {"margin": {}}}, "alerts.rules.margin is not a valid key; valid keys: "),
        (
            {"rules": {"nan": {"severity": "fatal"}}},
            "alerts.rules.nan.severity must be one of info, warning, critical, got 'fatal'",
        ),
        (
            {"rules": {"kill_switch": {"cooldown_s": -1}}},
            "alerts.rules.kill_switch.cooldown_s must be a number of seconds >= 0, got -1",
        ),
        (
            {"rules": {"stale_feed": {"cooldown_s": float("nan")}}},
            "alerts.rules.stale_feed.cooldown_s must be a number of seconds >= 0, got nan",
        ),
        (
            {"rules": {"circuit_open": {"enabled": "yes"}}},
            "alerts.rules.circuit_open.enabled must be true or false, got 'yes'",
        ),
        (
            {"rules": {"anomalous_return": {"z": 0}}},
            "alerts.rules.anomalous_return.z must be a number > 0, got 0",
        ),
        (
            {"rules": {"anomalous_volume": {"lookback": 2}}},
            "alerts.rules.anomalous_volume.lookback must be an integer >= 3, got 2",
        ),
        (
            {"rules": {"anomalous_volume": {"min_history": 200}}},
            "alerts.rules.anomalous_volume.min_history must be an integer in "
            "[3, lookback=100], got 200",
        ),
        ({"rules": {"drawdown": 0.1}}, "alerts.rules.drawdown must be a mapping, got 0.1"),
        ({"queue_size": 0}, "alerts.queue_size must be an integer >= 1, got 0"),
        ({"enabled": 1}, "alerts.enabled must be true or false, got 1"),
        (
            {"rule": {}},
            "alerts.rule is not a valid key; valid keys: channels, enabled, queue_size, rules",
        ),
        (
            {"channels": {"slack": {}}},
            "alerts.channels.slack is not a valid key; valid keys: email, webhook",
        ),
        (
            {"channels": {"webhook": {"timeout_s": 0}}},
            "alerts.channels.webhook.timeout_s must be a number of seconds > 0, got 0",
        ),
        (
            {"channels": {"email": {"sender": "a@b.c", "recipients": ["x@y.z"]}}},
            "alerts.channels.email.host must be a non-empty string, got None",
        ),
        (
            {"channels": {"email": {"host": "h", "sender": "a@b.c", "recipients": []}}},
            "alerts.channels.email.recipients must be a non-empty list of e-mail addresses",
        ),
        (
            {
                "channels": {
                    "email": {"host": "h", "sender": "a@b", "recipients": "x@y", "username": "u"}
                }
            },
            "alerts.channels.email.password_env must be set exactly when username is, got None",
        ),
    ],
)
def test_config_errors_name_the_full_key(spec, message):
    with pytest.raises(LiveConfigError) as e:
        AlertsConfig.from_mapping(spec)
    assert str(e.value).startswith(message)
    assert isinstance(e.value, ConfigError)


def test_config_reads_omegaconf_mappings():
    from omegaconf import OmegaConf

    d = OmegaConf.create({"rules": {"drawdown": {"threshold": 0.2}}, "channels": {"email": None}})
    assert AlertsConfig.from_mapping(d).rule("drawdown").threshold == 0.2


# ----------------------------------------------------------------------------- cooldown
def test_cooldown_suppresses_counts_and_fires_again_after():
    clock = Clock()
    seen: list[Alert] = []
    cfg = config(kill_switch={"cooldown_s": 600})
    m = manager(cfg, clock, on_alert=seen.append)
    first = m.event("kill_switch", "kill switch engaged", reason="drawdown")
    assert first is not None and first.suppressed == 0 and first.severity == "critical"
    assert first.key == "kill_switch" and first.values == {"reason": "drawdown"}
    for dt in (1, 300, 599.9):
        clock.t += dt - (clock.t - 1_700_000_000.0)
        assert m.event("kill_switch", "kill switch engaged") is None
    assert m.suppressed == {"kill_switch": 3}
    clock.t = 1_700_000_000.0 + 600
    again = m.event("kill_switch", "kill switch engaged")
    assert again is not None and again.suppressed == 3
    assert "(suppressed: 3)" in again.summary()
    assert m.suppressed == {}
    assert seen == [first, again], "on_alert gets each fired alert, synchronously"
    clock.t += 1
    assert m.event("kill_switch", "kill switch engaged") is None


def test_dedup_keys_are_independent():
    clock = Clock()
    m = manager(config(stale_feed={"cooldown_s": 60}, anomalous_volume={"cooldown_s": 60}), clock)
    assert m.event("stale_feed", "no bar for 2h", key="binance").key == "stale_feed:binance"
    assert m.event("stale_feed", "no bar for 2h", key="kraken") is not None
    assert m.event("stale_feed", "no bar for 2h", key="binance") is None
    assert m.event("stale_feed", "no bar for 2h") is not None, "no key is a key of its own"
    assert m.suppressed == {"stale_feed:binance": 1}


def test_a_clock_going_back_does_not_stall_a_key_forever():
    clock = Clock()
    m = manager(config(circuit_open={"cooldown_s": 60}), clock)
    assert m.event("circuit_open", "broker breaker open")
    clock.t -= 10_000
    assert m.event("circuit_open", "broker breaker open") is None
    clock.t += 60
    assert m.event("circuit_open", "broker breaker open") is not None


def test_disabled_rules_and_master_switch_fire_nothing():
    m = manager(config(limit_hit={"enabled": False}))
    assert m.observe_bar(bar(risk_clipped=True)) == []
    off = AlertsConfig.from_mapping({"enabled": False})
    m = manager(off)
    assert m.observe_bar(bar(risk_clipped=True, nan_actions=True, drawdown=0.9)) == []
    assert m.event("kill_switch", "engaged") is None


def test_event_refuses_unknown_rules_and_keeps_values_plain():
    m = manager()
    with pytest.raises(ValueError, match="unknown alert rule 'panic'"):
        m.event("panic", "x")
    a = m.event(
        "stale_feed",
        "no bar",
        age_s=np.float32(7200.0),
        bars=np.int64(2),
        url="postgresql://u:pw@host/db",
        ok=True,
    )
    assert a.values == {
        "age_s": 7200.0,
        "bars": 2.0,
        "url": "postgresql://u:***@host/db",
        "ok": "True",
    }
    assert json.loads(json.dumps(a.as_dict())) == a.as_dict()
    assert a.time == "2023-11-14T22:13:20+00:00", "an event's time comes from the clock"


def test_on_alert_errors_surface_after_every_alert_was_handed_over():
    seen: list[str] = []

    def on_alert(a: Alert) -> None:
        seen.append(a.rule)
        raise OSError("log full")

    m = manager(on_alert=on_alert)
    with pytest.raises(OSError, match="log full"):
        m.observe_bar(bar(risk_clipped=True, nan_features=True))
    assert seen == ["nan", "limit_hit"]


# ----------------------------------------------------------------------------- rules
def test_drawdown_fires_at_its_threshold_only():
    m = manager(config(drawdown={"threshold": 0.1}))
    assert m.observe_bar(bar(drawdown=0.099)) == []
    (a,) = m.observe_bar(bar(drawdown=0.1))
    assert (a.rule, a.severity, a.values["drawdown"], a.values["threshold"]) == (
        "drawdown",
        "warning",
        0.1,
        0.1,
    )
    assert a.time == "2024-01-01T00:00:00", "a bar's alert carries the bar's time"
    assert rules_of(m.observe_bar(bar(drawdown=-0.25))) == ["drawdown"], "sign-agnostic"
    assert m.observe_bar(bar(drawdown=float("nan"))) == []


def test_daily_loss_measures_from_the_start_of_the_utc_day():
    m = manager(config(daily_loss={"threshold": 0.05}))
    t = hours("2024-01-01T22:00", 5)
    # the first bar ever: the day starts at its equity before the bar (100 / 1.02 = 98.04)
    assert m.observe_bar(bar(t[0], equity=100.0, bar_return=0.02)) == []
    (a,) = m.observe_bar(bar(t[1], equity=93.0))  # 1 - 93 / 98.04 = 5.1%
    assert a.rule == "daily_loss" and a.values["loss"] == pytest.approx(1 - 93 / (100 / 1.02))
    # a new UTC day starts from the last bar's equity (93): -1.1% is no alert
    assert m.observe_bar(bar(t[2], equity=92.0)) == []
    # an offset time is read in UTC: 01:30+02:00 is still 2024-01-01, already past, so it
    # restarts the day (from 92) rather than counting 2024-01-02's loss
    assert m.observe_bar(bar("2024-01-02T01:30:00+02:00", equity=88.0)) == []
    assert m.state_dict()["day"] == "2024-01-01"
    assert m.observe_bar(bar(t[3], equity=87.0)) == []  # 2024-01-02 from 88: -1.1%
    (b,) = m.observe_bar(bar(t[4], equity=83.5))  # 1 - 83.5 / 88 = 5.1%
    assert b.values["day_start_equity"] == 88.0 and "2024-01-02" in b.message


def test_limit_hit_and_nan_fire_on_their_flags_only():
    m = manager()
    assert m.observe_bar(bar()) == []
    assert rules_of(m.observe_bar(bar(risk_clipped=True))) == ["limit_hit"]
    (a,) = m.observe_bar(bar(nan_features=True))
    assert a.rule == "nan" and a.message == "NaN in features" and a.severity == "critical"
    (a,) = m.observe_bar(bar(nan_actions=True))
    assert a.message == "NaN in actions"
    (a,) = m.observe_bar(bar(nan_features=True, nan_actions=True))
    assert a.values == {"where": "features and actions"}


def quiet_returns(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, n)


def test_anomalous_return_needs_min_history_and_excludes_the_current_bar():
    m = manager()
    t = hours("2024-01-01", 40)
    r = quiet_returns(31)
    for i in range(29):
        assert m.observe_bar(bar(t[i], bar_return=r[i])) == []
    # 29 bars of reference: too few, though with itself counted it would have 30 and fire
    assert m.observe_bar(bar(t[29], bar_return=0.5)) == []
    m = manager()
    for i in range(30):
        assert m.observe_bar(bar(t[i], bar_return=r[i])) == []
    (a,) = m.observe_bar(bar(t[30], bar_return=0.5))
    z, med, scale = robust_z(0.5, r[:30])
    assert a.rule == "anomalous_return" and a.key == "anomalous_return"
    assert a.values["z"] == pytest.approx(z) and a.values["median"] == pytest.approx(med)
    ref = r[:30]
    assert scale == pytest.approx(1.4826 * np.median(np.abs(ref - np.median(ref))))
    with_self = robust_z(0.5, np.append(ref, 0.5))
    assert not math.isclose(with_self[0], z), "the bar is not part of its own reference"


def test_anomalous_return_matches_a_reference_over_the_previous_lookback_bars():
    lookback, min_history, zmax = 40, 30, 6.0
    rule = {"lookback": lookback, "min_history": min_history, "z": zmax}
    m = manager(config(anomalous_return=rule))
    r = quiet_returns(300, seed=1)
    # spikes, including one at the edge of min_history and a loud regime that later leaves
    # the window (it must stop inflating the scale after lookback bars)
    r[29], r[30], r[150], r[151] = 0.3, -0.3, 0.1, 0.1
    r[200:240] *= 30
    r[241] *= 0.2
    r[250], r[285] = 0.25, 0.25  # 250's window holds the loud regime, 285's no longer
    times = hours("2024-01-01", len(r))
    got = [i for i in range(len(r)) if m.observe_bar(bar(times[i], bar_return=r[i]))]
    expected = []
    for i in range(len(r)):
        ref = r[max(0, i - lookback) : i]
        if len(ref) >= min_history:
            med = np.median(ref)
            mad = np.median(np.abs(ref - med))
            if abs(r[i] - med) / (1.4826 * mad) > zmax:
                expected.append(i)
    assert got == expected
    assert {30, 150, 151, 200, 285} <= set(got) and not {29, 250} & set(got)


def test_anomalous_volume_is_scored_per_asset():
    m = manager()
    rng = np.random.default_rng(2)
    t = hours("2024-01-01", 60)
    for i in range(50):
        v = [1000 + rng.normal(0, 20), 5 + rng.normal(0, 0.1)]
        assert m.observe_bar(bar(t[i], volume=v, assets=["BTC", "DOGE"])) == []
    # 1000 is ordinary for BTC but 200 sd for DOGE
    (a,) = m.observe_bar(bar(t[50], volume=[1000.0, 1000.0], assets=["BTC", "DOGE"]))
    assert (a.rule, a.key, a.values["asset"], a.severity) == (
        "anomalous_volume",
        "anomalous_volume:DOGE",
        "DOGE",
        "info",
    )
    # a NaN volume is skipped, not scored or remembered
    assert m.observe_bar(bar(t[51], volume=[float("nan"), 5.0], assets=["BTC", "DOGE"])) == []
    assert len(m.state_dict()["volumes"]["BTC"]) == 51
    with pytest.raises(LiveDataError, match="2 volumes for 1 assets"):
        m.observe_bar(bar(t[52], volume=[1.0, 2.0], assets=["BTC"]))


def test_robust_z_falls_back_when_mad_is_zero_and_gives_up_on_a_constant_reference():
    ref = [0.0] * 20 + [1.0] * 10  # MAD 0: over half the values equal
    z, med, scale = robust_z(5.0, ref)
    assert med == 0.0 and scale == pytest.approx(1.2533 * 10 / 30) and z == pytest.approx(5 / scale)
    assert robust_z(5.0, [3.0] * 30) is None
    m = manager()
    for t in hours("2024-01-01", 35):
        m.observe_bar(bar(t, volume=[0.0]))
    assert m.observe_bar(bar("2024-01-03T00:00:00", volume=[1e6])) == [], "no scale, no alert"


# ----------------------------------------------------------------------------- state
def test_state_round_trip_keeps_cooldowns_history_and_the_day():
    clock = Clock()
    cfg = config(kill_switch={"cooldown_s": 600})
    m = manager(cfg, clock)
    t = hours("2024-01-01T00:00", 40)
    r = quiet_returns(35)
    for i in range(35):
        m.observe_bar(bar(t[i], bar_return=r[i], equity=100.0))
    assert m.event("kill_switch", "engaged")
    clock.t += 10
    assert m.event("kill_switch", "engaged") is None
    state = json.loads(json.dumps(m.state_dict(), allow_nan=False))

    restarted = manager(cfg, clock)
    restarted.load_state_dict(state)
    assert restarted.state_dict() == state
    clock.t += 10
    assert restarted.event("kill_switch", "engaged") is None, "a restart does not re-fire"
    clock.t += 600
    assert restarted.event("kill_switch", "engaged").suppressed == 2, "nor forget"
    # the return history and the day's start equity came along
    assert rules_of(restarted.observe_bar(bar(t[35], bar_return=0.5, equity=94.0))) == [
        "daily_loss",
        "anomalous_return",
    ]


def test_load_state_refuses_foreign_states():
    m = manager()
    with pytest.raises(StateMismatchError, match="version 7"):
        m.load_state_dict({**m.state_dict(), "version": 7})
    with pytest.raises(StateMismatchError, match="malformed"):
        m.load_state_dict({**m.state_dict(), "volumes": [1.0, 2.0]})


def test_reconfigure_swaps_thresholds_and_keeps_state():
    clock = Clock()
    m = manager(config(drawdown={"threshold": 0.2}, kill_switch={"cooldown_s": 600}), clock)
    assert m.event("kill_switch", "engaged")
    for t in hours("2024-01-01", 30):
        m.observe_bar(bar(t))
    assert m.observe_bar(bar(drawdown=0.15)) == []
    m.reconfigure(config(drawdown={"threshold": 0.1}, kill_switch={"cooldown_s": 600}))
    assert rules_of(m.observe_bar(bar(drawdown=0.15))) == ["drawdown"]
    assert m.event("kill_switch", "engaged") is None, "cooldowns survive a reload"
    m.reconfigure(config(anomalous_return={"lookback": 10, "min_history": 5}))
    assert len(m.state_dict()["returns"]) == 10, "a shorter lookback keeps the newest bars"


def test_observe_bar_and_events_from_several_threads():
    m = manager(config(stale_feed={"cooldown_s": 3600}))
    fired: list[Alert | None] = []

    def worker() -> None:
        for _ in range(50):
            fired.append(m.event("stale_feed", "stale"))
            m.observe_bar(bar())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(a is not None for a in fired) == 1
    assert m.suppressed == {"stale_feed": 199}
