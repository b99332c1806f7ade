"""The trade service in-process, as ``trade.py`` builds it (Hydra's composed ``conf/trade.yaml``
and a real checkpoint): faulty feeds, commands (switch model, roll back, flatten, resume),
hot-reloaded settings, backups restored and continued, escalation and deploy strictness."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from adan.errors import FeedError, LiveConfigError
from adan.ops.feeds.base import FeedBar
from adan.ops.run_dir import register_resolver
from adan.tasks.registry import register_configs
from adan.tasks.trade import open_service, trade
from tests.e2e.conftest import ROOT, run_train

register_configs()
register_resolver()
ASSETS = ("BTCUSDT", "XRPUSDT")
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    # assets named as on an exchange, so the exchange feed can serve them too
    run_train(
        out,
        "debug=fast",
        "data.source.n_bars=3000",
        f"+data.source.asset_names=[{','.join(ASSETS)}]",
    )
    return out


def config(tmp, *overrides):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose(
            "trade",
            overrides=[
                f"paths.output_dir={tmp}",
                f"persistence.path={tmp}/state.sqlite",
                f"persistence.backup_dir={tmp}/backups",
                "health.enabled=false",
                "loop.poll_interval_s=0",
                *overrides,
            ],
        )


def service(tmp, ckpt, *overrides):
    cfg = config(tmp, f"ckpt_path={ckpt}", *overrides)
    return open_service(cfg, tmp / "state.sqlite")


def rows(state, name):
    with sqlite3.connect(state) as db:
        return pd.read_sql_query(f"SELECT * FROM {name} ORDER BY rowid", db)


def bars_of(feed):
    """Every bar the replay feed would deliver, as FeedBars."""
    out = []
    while not feed.exhausted:
        out += feed.poll()
    return out


@pytest.fixture(scope="module")
def clean(ckpt, tmp_path_factory):
    """One uninterrupted in-process replay: its equity table and its bars."""
    tmp = tmp_path_factory.mktemp("clean")
    svc = service(tmp, ckpt)
    assert svc.loop.run() == 0
    svc.close()
    return rows(tmp / "state.sqlite", "equity"), rows(tmp / "state.sqlite", "bars")


def test_faulty_feed_bars_are_handled_as_the_cleaner_would(ckpt, clean, tmp_path):
    equity, _ = clean
    svc = service(tmp_path, ckpt)
    loop = svc.loop
    bars = bars_of(loop.feed)
    for i, bar in enumerate(bars[:120]):
        assert loop.process(bar) == 1
        loop.process(bar)  # delivered twice: dropped
        if i >= 5:
            loop.process(bars[i - 5])  # again, later: dropped
    stray = bars[50]  # a time never delivered, before the last bar traded: late
    late = FeedBar(stray.timestamp + np.timedelta64(30, "m"), stray.open, stray.high, stray.low,
                   stray.close, stray.volume)  # fmt: skip
    assert loop.process(late) == 0
    bad = bars[120]
    nan_bar = FeedBar(bad.timestamp, bad.open, bad.high, bad.low, bad.close * np.nan, bad.volume)
    assert loop.process(nan_bar) == 0  # malformed: dropped, its slot becomes a gap
    swapped = bars[121]
    inconsistent = FeedBar(swapped.timestamp, swapped.open, swapped.low, swapped.high,
                           swapped.close, swapped.volume)  # fmt: skip
    assert loop.process(inconsistent) == 2  # the gap (bar 120) filled flat, then bar 121
    off = FeedBar(bars[122].timestamp + np.timedelta64(30, "m"), *(bars[122].open,) * 4,
                  bars[122].volume)  # fmt: skip
    assert loop.process(off) == 0  # off the bar clock
    # 8 bars missing > feed.max_fill_bars: bars were lost. The account goes flat (kill
    # switch), then the gap is filled flat so the book is still marked
    assert loop.process(bars[130]) == 9
    assert loop.halted is not None and "max_fill_bars" in loop.halted
    assert loop.process(bars[131]) == 1
    svc.close()

    state = tmp_path / "state.sqlite"
    got = rows(state, "equity")
    # up to the malformed bar, duplicates and late bars changed nothing
    n = 120 - 32  # equity rows from the first fill (bar 32) to the bar before the gap
    pd.testing.assert_frame_equal(got.iloc[:n], equity.iloc[:n], check_exact=True)
    traded = rows(state, "bars")
    assert traded["time"].is_unique and len(traded) == 132
    assert traded["filled"].tolist()[120] == 1 and traded["filled"].sum() == 1 + 8
    orders = rows(state, "orders")
    assert [json.loads(a) for a in orders["action"].iloc[-10:]] == [[0.0, 0.0]] * 10
    filled = traded.iloc[120]
    assert json.loads(filled["volume"]) == [0.0, 0.0]
    assert json.loads(filled["close"]) == json.loads(traded.iloc[119]["close"])
    rejected = svc.loop.metrics.render().decode()
    for reason in ("duplicate", "late", "malformed", "off_clock"):
        assert f'adan_bars_rejected_total{{reason="{reason}"}}' in rejected


def test_commands_switch_model_roll_back_flatten_and_resume(ckpt, tmp_path):
    svc = service(tmp_path, ckpt)
    loop = svc.loop
    bars = bars_of(loop.feed)
    best = ckpt / "checkpoints" / "best-iter0001.ckpt"
    cmd = config(tmp_path, "command=switch_model", f"model_path={best}")

    def step(k):
        for bar in bars[loop.seq : loop.seq + k]:
            loop.process(bar)

    step(60)
    assert trade(cmd)["queued"] == "switch_model"
    step(1)
    models = rows(tmp_path / "state.sqlite", "models")
    assert list(models["id"]) == [1, 2] and models["path"].iloc[1] == str(best)
    assert loop.model.id == 2 and "switch from #1" in models["reason"].iloc[1]
    step(5)
    trade(config(tmp_path, "command=rollback"))
    step(1)
    models = rows(tmp_path / "state.sqlite", "models")
    assert models["path"].iloc[2] == models["path"].iloc[0] and loop.model.id == 3
    assert "rollback from #2 to #1" in models["reason"].iloc[2]
    trade(config(tmp_path, "command=flatten", "reason=operator test"))
    step(3)
    orders = rows(tmp_path / "state.sqlite", "orders")
    assert loop.halted == "operator test"
    assert [json.loads(a) for a in orders["action"].iloc[-3:]] == [[0.0, 0.0]] * 3
    trade(config(tmp_path, "command=resume"))
    step(2)
    assert loop.halted is None
    orders = rows(tmp_path / "state.sqlite", "orders")
    assert json.loads(orders["action"].iloc[-1]) != [0.0, 0.0]
    # every order of each model is recorded against it
    assert set(orders["model"]) == {1, 2, 3}
    commands = rows(tmp_path / "state.sqlite", "commands")
    assert commands["applied_seq"].notna().all()
    status = trade(config(tmp_path, "command=status"))
    assert status["model"]["id"] == 3 and status["halted"] is None
    svc.close()
    # a path that holds no checkpoint is refused when the command is queued
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        trade(config(tmp_path, "command=switch_model", f"model_path={tmp_path / 'nope.ckpt'}"))


def test_hot_reloaded_settings_apply_and_a_bad_file_keeps_the_old_ones(ckpt, tmp_path):
    settings = tmp_path / "live.yaml"
    svc = service(tmp_path, ckpt, f"live.settings_path={settings}")
    loop = svc.loop
    bars = bars_of(loop.feed)
    for bar in bars[:50]:
        loop.process(bar)
    settings.write_text("trading:\n  risk:\n    max_position: 0.01\n")
    assert loop.watcher.check()
    assert svc.loop.broker.trading.risk.max_position == 0.01
    for bar in bars[50:80]:
        loop.process(bar)
    weights = [np.abs(json.loads(w)) for w in rows(tmp_path / "state.sqlite", "equity")["weights"]]
    assert (
        max(w.max() for w in weights[-25:]) <= 0.011
    )  # the new limit binds (weights drift with prices)
    for text, key in (
        ("trading:\n  fee_bps: 1.0\n", "trading.fee_bps"),
        ("trading:\n  risk:\n    max_position: -3\n", "max_position"),
        ("alerts:\n  rules:\n    drawdown:\n      threshold: 7\n", "alerts.rules.drawdown"),
        ("trading: [unclosed\n", "not valid YAML"),
    ):
        settings.write_text(text)
        os.utime(settings, ns=(1, os.stat(settings).st_mtime_ns + 10**9))
        assert not loop.watcher.check()
        assert key in loop.watcher.history[-1][2], loop.watcher.history[-1]
        assert svc.loop.broker.trading.risk.max_position == 0.01  # the old settings kept
    svc.close()


def test_a_restored_snapshot_continues_to_where_an_uninterrupted_run_ends(ckpt, clean, tmp_path):
    equity, _ = clean
    svc = service(tmp_path, ckpt, "persistence.backup_every_bars=50", "loop.max_bars=160")
    assert svc.loop.run() == 0
    svc.close()
    snaps = sorted((tmp_path / "backups").glob("state-*.sqlite"))
    assert [s.name for s in snaps] == [f"state-{k:08d}.sqlite" for k in (50, 100, 150)]
    trade(config(tmp_path, "command=restore", f"backup={snaps[1]}"))
    assert len(rows(tmp_path / "state.sqlite", "bars")) == 100
    assert (tmp_path / "state.sqlite.before-restore").is_file()
    again = service(tmp_path, ckpt)
    assert again.loop.seq == 100
    assert again.loop.run() == 0
    again.close()
    pd.testing.assert_frame_equal(rows(tmp_path / "state.sqlite", "equity"), equity,
                                  check_exact=True)  # fmt: skip


class FlakyFeed:
    """The replay feed behind a switch: ``down`` makes every poll fail as a dead server."""

    def __init__(self, feed):
        self.feed, self.down = feed, False
        self.assets, self.bar_ns = feed.assets, feed.bar_ns

    exhausted = property(lambda self: self.feed.exhausted)

    def poll(self):
        if self.down:
            raise FeedError("connection refused (test server down)")
        return self.feed.poll()

    def history(self, before, bars):
        return self.feed.history(before, bars)

    def close(self):
        self.feed.close()


def test_repeated_feed_failures_flatten_then_trading_waits_for_resume(ckpt, tmp_path):
    svc = service(tmp_path, ckpt, "resilience.retry.attempts=2", "resilience.retry.initial_s=0.001",
                  "resilience.retry.max_s=0.001", "resilience.breaker.fail_max=100",
                  "resilience.escalation.max_consecutive_failures=3")  # fmt: skip
    loop = svc.loop
    loop.feed = FlakyFeed(loop.feed)
    loop.settings.max_bars = 60
    loop.run()
    loop.feed.down = True
    loop.settings.max_bars = None
    polls = []
    loop.sleep = lambda s: (
        polls.append(s) or (len(polls) >= 3 and setattr(loop.feed, "down", False))
    )
    loop.stop_requested = False
    loop.settings.max_bars = 20
    loop.run()
    assert loop.halted is not None and "feed" in loop.halted
    orders = rows(tmp_path / "state.sqlite", "orders")
    assert [json.loads(a) for a in orders["action"].iloc[-10:]] == [[0.0, 0.0]] * 10
    events = rows(tmp_path / "state.sqlite", "events")
    kinds = list(events["kind"])
    assert "kill_switch" in kinds
    alerts = [json.loads(p)["rule"] for p in events[events["kind"] == "alert"]["payload"]]
    assert "kill_switch" in alerts
    svc.close()


def test_the_live_deploy_refuses_to_start_without_its_settings(ckpt, tmp_path, monkeypatch):
    monkeypatch.delenv("ADAN_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("ADAN_SMTP_PASSWORD", raising=False)
    with pytest.raises(LiveConfigError) as err:
        trade(config(tmp_path, "deploy=live", f"ckpt_path={ckpt}"))
    for name in ("live.settings_path", "alerts.channels.email.host",
                 "alerts.channels.email.recipients", "$ADAN_ALERT_WEBHOOK_URL",
                 "$ADAN_SMTP_PASSWORD"):  # fmt: skip
        assert name in str(err.value)


def test_nan_actions_engage_the_kill_switch_and_alert(ckpt, tmp_path):
    svc = service(tmp_path, ckpt)
    loop = svc.loop
    bars = bars_of(loop.feed)
    for bar in bars[:40]:
        loop.process(bar)
    loop.model.actor = lambda obs: np.full(2, np.nan)  # a policy that broke
    for bar in bars[40:44]:
        loop.process(bar)
    assert loop.halted is not None and "NaN in the actions" in loop.halted
    state = tmp_path / "state.sqlite"
    orders = rows(state, "orders")
    assert [json.loads(a) for a in orders["action"].iloc[-4:]] == [[0.0, 0.0]] * 4
    alerts = [json.loads(p) for p in rows(state, "events").query("kind == 'alert'")["payload"]]
    assert {"nan", "kill_switch"} <= {a["rule"] for a in alerts}
    assert next(a for a in alerts if a["rule"] == "nan")["severity"] == "critical"
    svc.close()


class SilentFeed:
    """A live feed that has nothing new: every poll is empty, it never ends."""

    assets, bar_ns, exhausted = ASSETS, 3_600_000_000_000, False

    def poll(self):
        return []

    def close(self):
        pass


def test_a_stale_feed_raises_one_alert_per_cooldown(ckpt, tmp_path):
    svc = service(tmp_path, ckpt, "feed.stale_after_s=60")
    loop = svc.loop
    now = [0.0]
    loop.clock = lambda: now[0]
    loop.last_bar_wall = 0.0
    loop.feed = SilentFeed()

    def sleep(_):
        now[0] += 30.0  # half a minute per poll, 10 polls: stale from the third on
        loop.stop_requested = now[0] >= 300

    loop.sleep = sleep
    loop.run()
    events = rows(tmp_path / "state.sqlite", "events")
    stale = [json.loads(p) for p in events.query("kind == 'alert'")["payload"]]
    assert [a["rule"] for a in stale] == ["stale_feed"]  # then within its cooldown
    assert "no new bar for" in stale[0]["message"]
    svc.close()


def test_features_that_cannot_be_computed_flatten_and_stop_without_committing_the_bar(
    ckpt, tmp_path
):
    svc = service(tmp_path, ckpt)
    loop = svc.loop
    bars = bars_of(loop.feed)
    for bar in bars[:40]:
        loop.process(bar)
    computed = loop.market.data

    def broken():
        raise ValueError("feature 'volume_z' is NaN at row 2600 (SYN1)")

    loop.market.data = broken
    best = ckpt / "checkpoints" / "best-iter0001.ckpt"
    loop.store.queue_command("switch_model", {"path": str(best)})
    assert loop.process(bars[40]) == 0
    assert loop.stop_requested and loop.exit_code == 3
    assert loop.halted is not None and "volume_z" in loop.halted
    state = tmp_path / "state.sqlite"
    assert len(rows(state, "bars")) == 40  # the bar's transaction rolled back
    assert len(loop.market.bars()) == loop.market.history_bars + 40
    alerts = [
        json.loads(p)["rule"] for p in rows(state, "events").query("kind == 'alert'")["payload"]
    ]
    assert {"nan", "kill_switch"} <= set(alerts)
    # the switch applied inside the failed bar was rolled back with it, in memory too
    assert loop.model.id == 1 and rows(state, "commands")["applied_seq"].isna().all()
    loop.market.data = computed
    svc.close()
    again = service(tmp_path, ckpt)  # resumes; the queued switch waits for the next bar
    assert again.loop.seq == 40 and again.loop.model.id == 1
    assert again.loop.process(bars[40]) == 1 and again.loop.model.id == 2
    again.close()


def test_a_service_stopped_before_its_first_bar_starts_again(ckpt, tmp_path):
    service(tmp_path, ckpt).close()  # e.g. SIGTERM while waiting for the first closed bar
    svc = service(tmp_path, ckpt)
    assert svc.loop.seq == 0 and svc.loop.run() == 0
    svc.close()
    assert len(rows(tmp_path / "state.sqlite", "models")) == 1


def write_csvs(folder, bars, rows):
    """One OHLCV file per asset (named by the asset) of ``bars`` rows ``rows``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, asset in enumerate(bars.assets):
        pd.DataFrame(
            {"timestamp": pd.to_datetime(bars.timestamps[rows]),
             **{k: getattr(bars, k)[rows, i] for k in ("open", "high", "low", "close", "volume")}}
        ).to_csv(folder / f"{asset}.csv", index=False)  # fmt: skip
    return [str(folder / f"{a}.csv") for a in bars.assets]


def test_a_replayed_csv_goes_through_the_loader_and_cleaner_and_trades_as_the_split(
    ckpt, clean, tmp_path
):
    equity, _ = clean
    svc = service(tmp_path, ckpt)  # only to read the test split's bars
    test_bars = svc.loop.feed.bars
    svc.close()
    (tmp_path / "state.sqlite").unlink()
    files = write_csvs(tmp_path / "csv", test_bars, slice(None))
    run = tmp_path / "run"
    svc = service(run, ckpt, f"feed.path=[{','.join(files)}]")
    assert svc.loop.run() == 0
    svc.close()
    # warmed up on the checkpoint's own bars before the files: the same trades as the split
    got = rows(run / "state.sqlite", "equity")
    np.testing.assert_allclose(got["equity"], equity["equity"], rtol=1e-12)
    assert (run / "feed_cleaning_report.json").is_file()


def test_a_csv_that_continues_nothing_warms_up_on_its_own_first_bars(ckpt, tmp_path):
    svc = service(tmp_path / "a", ckpt)
    test_bars = svc.loop.feed.bars
    svc.close()
    later = replace_times(test_bars, np.timedelta64(400, "D"))
    files = write_csvs(tmp_path / "csv", later, slice(None))
    svc = service(tmp_path / "b", ckpt, f"feed.path=[{','.join(files)}]")
    warmup = svc.loop.market.history_bars
    assert 0 < warmup < 100  # the features' warm-up, not traded
    assert svc.loop.run() == 0
    svc.close()
    traded = rows(tmp_path / "b" / "state.sqlite", "bars")
    assert len(traded) == len(test_bars) - warmup


def replace_times(bars, shift):
    from dataclasses import replace

    return replace(bars, timestamps=bars.timestamps + shift)


def test_an_exchange_feed_warms_up_on_its_history_and_trades_new_closed_bars(ckpt, tmp_path):
    from tests.ops.kline_server import KlineServer

    svc = service(tmp_path / "a", ckpt)
    bars = svc.loop.feed.bars
    svc.close()
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("h")
    shift = (now - pd.Timedelta(hours=2)) - pd.Timestamp(bars.timestamps[-1])
    stamps = pd.to_datetime(bars.timestamps) + shift
    with KlineServer(list(ASSETS)) as server:

        def add(rows_):
            for i, asset in enumerate(ASSETS):
                server.add_bars(asset, [(str(stamps[k]), bars.open[k, i], bars.high[k, i],
                                         bars.low[k, i], bars.close[k, i], bars.volume[k, i])
                                        for k in rows_])  # fmt: skip

        n = len(bars)
        add(range(0, n - 40))
        svc = service(tmp_path / "b", ckpt, "feed=exchange", f"feed.api_url={server.api_url}",
                      f"feed.symbols=[{','.join(a[:3] + '/' + a[3:] for a in ASSETS)}]",
                      "feed.history_bars=300")  # fmt: skip
        loop = svc.loop
        assert loop.market.history_bars == 300
        assert loop.run_once() == 0  # nothing new yet
        add(range(n - 40, n))
        traded = loop.run_once()
        svc.close()
    assert traded == 40
    equity = rows(tmp_path / "b" / "state.sqlite", "equity")
    assert len(equity) == 40 - 32  # the account opened at the 32nd live bar (env.window)


def test_offline_commands_refuse_what_they_cannot_do(ckpt, tmp_path):
    with pytest.raises(LiveConfigError, match="command must be one of"):
        trade(config(tmp_path, "command=explode"))
    with pytest.raises(LiveConfigError, match="no state file"):
        trade(config(tmp_path, "command=status"))
    with pytest.raises(LiveConfigError, match="needs backup="):
        trade(config(tmp_path, "command=restore"))
    svc = service(tmp_path, ckpt, "loop.max_bars=5")
    svc.loop.run()
    svc.close()
    with pytest.raises(LiveConfigError, match="needs model_path="):
        trade(config(tmp_path, "command=switch_model"))
    out = trade(config(tmp_path, "command=backup"))
    assert out["backup"].endswith("state-manual.sqlite")
    status = trade(config(tmp_path, "command=status"))
    assert status["bars"] == 5 and status["model"]["id"] == 1
    with pytest.raises(LiveConfigError, match="feed.split='nope'"):
        service(tmp_path / "x", ckpt, "feed.split=nope")


def test_refused_commands_are_recorded_and_never_stop_the_service(ckpt, tmp_path):
    svc = service(tmp_path, ckpt)
    loop = svc.loop
    bars = bars_of(loop.feed)
    store = loop.store
    store.queue_command("explode", {})
    store.queue_command("rollback", {})  # only one model ran: nothing to roll back to
    other = tmp_path / "other"
    run_train(other, "debug=fast", "data.source.n_bars=3000", "data.source.seed=7",
              "env.window=16")  # fmt: skip
    store.queue_command("switch_model", {"path": str(other)})
    for bar in bars[:3]:
        assert loop.process(bar) == 1
    results = list(rows(tmp_path / "state.sqlite", "commands")["result"])
    assert results[0] == "refused: unknown command 'explode'"
    assert results[1] == "refused: no earlier model to roll back to"
    assert results[2].startswith("refused:") and "window: 32 -> 16" in results[2]
    assert loop.model.id == 1
    svc.close()


def test_flatten_and_stop_exits_with_code_3_after_flattening(ckpt, tmp_path):
    svc = service(tmp_path, ckpt, "resilience.escalation.action=flatten_and_stop",
                  "resilience.retry.attempts=1", "resilience.breaker.fail_max=100",
                  "resilience.escalation.max_consecutive_failures=2")  # fmt: skip
    loop = svc.loop
    loop.feed = FlakyFeed(loop.feed)
    loop.settings.max_bars = 40
    loop.run()
    loop.feed.down, loop.stop_requested, loop.settings.max_bars = True, False, None
    loop.sleep = lambda s: None
    assert loop.run() == 3
    assert loop.halted is not None
    orders = rows(tmp_path / "state.sqlite", "orders")
    assert orders["status"].iloc[-2] == "cancelled" and json.loads(orders["action"].iloc[-1]) == [
        0.0,
        0.0,
    ]
    svc.close()
