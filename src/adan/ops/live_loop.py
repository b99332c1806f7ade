"""The paper-trading loop: one closed bar at a time, from feed to decision to fill to state.

Per bar, in this order (``TradingLoop.process``):

1. the bar gate (``adan.ops.bar_gate``) drops duplicates, late, malformed and off-clock bars and
   fills short gaps, as the cleaner would;
2. queued commands are applied (switch model, roll back, flatten, resume);
3. the live market recomputes the features of the history plus this bar (the checkpoint's
   pipeline and scalers; ``adan.ops.live_market``);
4. the broker fills the working order decided at the previous bar during this bar
   (``adan.ops.broker``: the backtest's trading desk) and marks the book at the close;
5. the policy decides on the observation at this bar's close; the decision becomes the new
   working order (flat while the kill switch is engaged);
6. alerts are evaluated; then ONE transaction persists the bar, the fills, the order, the
   equity row, the alerts and the whole account state (``adan.ops.state_store``).

A ``kill -9`` therefore loses at most the bar being processed, which the restart processes
again from the feed: no bar twice, no order lost or duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adan.errors import FeedError, LiveDataError, ModelError, TradingError
from adan.ops.bar_gate import BarGate
from adan.ops.broker import BarFill, PaperBroker
from adan.ops.feeds.base import FeedBar
from adan.ops.live_market import LiveMarket
from adan.ops.state_store import StateStore

log = logging.getLogger("adan.trade")
Actor = Callable[[dict[str, np.ndarray]], np.ndarray]


def iso(ts: np.datetime64) -> str:
    """A bar time as ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    return str(np.datetime_as_string(np.datetime64(ts, "s"), unit="s"))


@dataclass
class ModelSlot:
    """The policy trading now: its actor and the models-table row it was recorded as."""

    actor: Actor
    path: str
    sha256: str
    id: int = 0


@dataclass
class LoopSettings:
    """How the loop runs (``conf/trade.yaml``: ``loop``, ``feed``, ``persistence``)."""

    poll_interval_s: float = 1.0
    stale_after_s: float | None = None  # no new bar for this long: stale_feed alert (None: off)
    max_fill_bars: int = 3
    backup_every_bars: int = 0  # 0: no periodic snapshots
    keep_backups: int = 5
    backup_dir: str | None = None
    max_bars: int | None = None  # stop after this many bars (None: run until the feed ends)
    flat_action: np.ndarray = field(default_factory=lambda: np.zeros(1))


class TradingLoop:
    """Wires a feed, the live market, a broker, the policy and the state file together.

    Optional parts (None: off): ``alerts`` (``adan.ops.alerts.AlertManager``), ``metrics``
    (``adan.ops.health.TradingMetrics``), ``guard`` (``adan.ops.resilience.ServiceGuard`` for
    the feed), ``escalation`` (``adan.ops.resilience.Escalation``), ``watcher``
    (``adan.ops.hot_reload.SettingsWatcher``), ``events`` (a structured-log sink
    ``(event, fields)``). ``load_model(path) -> ModelSlot`` loads and checks a checkpoint for
    the switch and rollback commands.
    """

    def __init__(
        self,
        feed: Any,
        market: LiveMarket,
        broker: PaperBroker,
        model: ModelSlot,
        store: StateStore,
        settings: LoopSettings,
        *,
        load_model: Callable[[str], ModelSlot] | None = None,
        alerts: Any = None,
        metrics: Any = None,
        guard: Any = None,
        escalation: Any = None,
        watcher: Any = None,
        events: Callable[[str, dict], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feed, self.market, self.broker, self.model = feed, market, broker, model
        self.store, self.settings = store, settings
        self.load_model = load_model
        self.alerts, self.metrics, self.guard = alerts, metrics, guard
        self.escalation, self.watcher = escalation, watcher
        self._events = events
        self.sleep, self.clock = sleep, clock
        self.window = broker.window
        self.assets = market.assets
        self.seq = 0  # live bars processed (filled gaps included)
        self.pending: np.ndarray | None = None  # the working order's action
        self.pending_id: int | None = None
        self.halted: str | None = None  # why the kill switch is engaged
        self.stop_requested = False
        self.exit_code = 0
        self.last_bar_wall = clock()
        self.last_equity: float | None = None
        self.feed_state = "up"
        bar_ns = int(market.bars().bar_ns or feed.bar_ns)
        last = market.last_time
        self.gate = BarGate(
            bar_ns,
            len(self.assets),
            settings.max_fill_bars,
            last,
            None if last is None else market.bars().close[-1],
        )

    # ------------------------------------------------------------------------ events
    def event(self, name: str, /, **fields: Any) -> None:
        """One structured-log event (bar, decision, order, fill, alert, error, ...)."""
        if self._events is not None:
            self._events(name, fields)

    # ----------------------------------------------------------------------- restore
    def state(self) -> dict[str, Any]:
        """The account state persisted with every bar."""
        return {
            "broker": self.broker.state_dict(),
            "pending": None if self.pending is None else self.pending,
            "pending_id": self.pending_id,
            "halted": self.halted,
            "model_id": self.model.id,
            "alerts": None if self.alerts is None else self.alerts.state_dict(),
            "seq": self.seq,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a persisted ``state`` (the market holds the bars already)."""
        self.broker.load_state_dict(state["broker"])
        pending = state.get("pending")
        self.pending = None if pending is None else np.asarray(pending)
        self.pending_id = state.get("pending_id")
        self.halted = state.get("halted")
        self.seq = int(state["seq"])
        if self.alerts is not None and state.get("alerts") is not None:
            self.alerts.load_state_dict(state["alerts"])

    # -------------------------------------------------------------------------- run
    def run(self) -> int:
        """Poll and process bars until the feed ends, ``max_bars`` bars were processed, a
        stop was requested (SIGTERM) or an escalation stops the loop; the exit code."""
        s = self.settings
        processed = 0
        while not self.stop_requested:
            if self.watcher is not None:
                self.watcher.check()
            try:
                bars = self._poll()
            except TradingError as err:
                if self._failure("feed", err):
                    break
                self.sleep(s.poll_interval_s)
                continue
            if not bars:
                if getattr(self.feed, "exhausted", False):
                    break
                self._check_stale()
                self.sleep(s.poll_interval_s)
                continue
            for bar in bars:
                processed += self.process(bar)
                if s.max_bars is not None and processed >= s.max_bars:
                    self.stop_requested = True
                if self.stop_requested:
                    break
        if self.alerts is not None:
            self.alerts.flush(5.0)
        return self.exit_code

    def run_once(self) -> int:
        """One poll and the bars it brought (the loop's body, for callers that pace it
        themselves); the number of bars traded."""
        try:
            bars = self._poll()
        except TradingError as err:
            self._failure("feed", err)
            return 0
        return sum(self.process(bar) for bar in bars)

    def _poll(self) -> list[FeedBar]:
        call = self.feed.poll if self.guard is None else (lambda: self.guard.call(self.feed.poll))
        try:
            bars = call()
        except TradingError:
            self._set_feed("down")
            raise
        except OSError as err:
            self._set_feed("down")
            raise FeedError(f"the feed failed: {err}") from err
        self._set_feed("up")
        if self.escalation is not None:
            self.escalation.success("feed")
        return bars

    def ready(self) -> bool:
        """Trading normally: the feed answers, its circuit is closed, no kill switch."""
        closed = self.guard is None or self.guard.state == "closed"
        return self.halted is None and self.feed_state == "up" and closed

    def _set_feed(self, state: str) -> None:
        self.feed_state = state
        if self.metrics is not None:
            self.metrics.set_feed_up(state == "up")
            self.metrics.set_ready(self.ready())

    def _check_stale(self) -> None:
        limit = self.settings.stale_after_s
        quiet = self.clock() - self.last_bar_wall
        if limit is not None and quiet > limit and self.alerts is not None:
            alert = self.alerts.event(
                "stale_feed", f"no new bar for {quiet:.0f} s (stale_after_s={limit:g})",
                seconds=round(quiet, 1),
            )  # fmt: skip
            self._record_alerts([alert] if alert is not None else [])

    def _failure(self, service: str, err: TradingError) -> bool:
        """Count a failed call; escalate when the policy says so. True: stop the loop."""
        log.warning("%s call failed: %s", service, err)
        self.event("error", service=service, error=type(err).__name__, message=str(err))
        if self.metrics is not None:
            self.metrics.on_error(service)
        action = None if self.escalation is None else self.escalation.failure(service, err)
        if action is None and not err.retryable and self.escalation is None:
            action = "flatten_and_stop"
        if action is None:
            return False
        return self.escalate(action, f"{service}: {err}")

    def escalate(self, action: str, reason: str) -> bool:
        """Apply an escalation: flatten (engage the kill switch) and alert; True: stop."""
        if action in ("flatten_and_stop", "flatten_and_wait"):
            self.engage_kill_switch(reason)
        if action == "flatten_and_stop":
            self.exit_code = 3
            return True
        return False

    # ----------------------------------------------------------------- kill switch
    def engage_kill_switch(self, reason: str) -> None:
        """Cancel the working order, work a flat one instead, and trade nothing else until
        ``command=resume``; persisted at once."""
        if self.halted is None:
            self.halted = reason
            log.error("kill switch engaged: %s", reason)
            alerts = []
            if self.alerts is not None:
                alert = self.alerts.event("kill_switch", f"kill switch engaged: {reason}")
                alerts = [alert] if alert is not None else []
            with self.store.transaction() as db:
                self._flatten_order(db)
                self._record_alerts(alerts, db)
                self.store.add_event(db, self._now(), "kill_switch", {"reason": reason})
                self._save(db)

    def _flatten_order(self, db) -> None:
        if self.pending is None:
            return
        if self.pending_id is not None:
            db.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (self.pending_id,))
        self.pending = self.settings.flat_action.copy()
        decided = self.market.last_time
        self.pending_id = self._add_order(db, self.seq - 1, iso(decided), self.pending, "flatten")

    # ----------------------------------------------------------------------- a bar
    def process(self, bar: FeedBar) -> int:
        """Gate, trade and persist one delivered bar; the number of bars traded (gap fills
        included; 0 when the bar was rejected)."""
        try:
            decision = self.gate.check(bar)
        except LiveDataError as err:  # a gap longer than max_fill_bars: bars were lost
            if self._failure("data", err):
                self.stop_requested = True
                return 0
            # the account goes flat and stays so until command=resume; the gap is filled flat
            # so that the book keeps being marked and the features keep a clock
            self.engage_kill_switch(f"data: {err}")
            decision = self.gate.check(bar, fill_any_gap=True)
        if decision.rejected:
            log.warning("bar rejected (%s): %s", decision.rejected, decision.detail)
            self.event("bar_rejected", reason=decision.rejected, detail=decision.detail)
            if self.metrics is not None:
                self.metrics.on_rejected(decision.rejected)
            return 0
        if decision.repaired:
            log.warning("bar %s repaired: %s", iso(bar.timestamp), decision.repaired)
            self.event("bar_repaired", time=iso(bar.timestamp), rule=decision.repaired)
        done = 0
        for one, filled in decision.admitted:
            if filled:
                log.warning("gap: bar %s filled flat at the last close", iso(one.timestamp))
            try:
                self._trade_bar(one, filled)
            except LiveDataError as err:  # features that cannot be computed: nothing to trade on
                self._unusable_features(err)
                break
            done += 1
        self.last_bar_wall = self.clock()
        return done

    def _unusable_features(self, err: LiveDataError) -> None:
        """The bar's transaction rolled back; the account goes flat and the loop stops (exit
        3): every later bar would read the same history. The bar comes again after a
        restart, so the cause (the data, the feature code) must be fixed first."""
        log.error("%s: flattening and stopping", err)
        self.event("error", service="data", error=type(err).__name__, message=str(err))
        if self.alerts is not None:
            alert = self.alerts.event("nan", str(err), key="nan:features")
            self._record_alerts([alert] if alert is not None else [])
        self.engage_kill_switch(str(err))
        self.stop_requested, self.exit_code = True, 3

    def _trade_bar(self, bar: FeedBar, filled: bool) -> None:
        t_start = time.perf_counter()
        stamp = iso(bar.timestamp)
        self.market.append(bar, filled)
        seq = self.seq
        memory = (self.model, self.halted, self.pending, self.pending_id, self.seq)
        try:
            with self.store.transaction() as db:
                fill, decided, alerts, nan_actions = self._bar_transaction(db, seq, stamp, bar,
                                                                           filled)  # fmt: skip
        except LiveDataError:  # the transaction rolled back: so does what it changed in memory
            self.model, self.halted, self.pending, self.pending_id, self.seq = memory
            self.market.drop_last()
            raise
        if fill is not None:
            self.last_equity = fill.equity
        self._after_commit(seq, stamp, bar, fill, decided, t_start)

    def _bar_transaction(self, db, seq: int, stamp: str, bar: FeedBar, filled: bool) -> tuple:
        """Steps 3-8 of a bar inside its transaction: (fill, decision, alerts, NaN actions)."""
        fill: BarFill | None = None
        decided: np.ndarray | None = None
        alerts: list = []
        nan_features = nan_actions = False
        self._apply_commands(db, seq, stamp)
        self.store.add_bar(db, seq, stamp, bar, filled)
        traded = self.market.traded_bars()
        if traded >= self.window:
            try:
                data = self.market.data()
            except ValueError as err:
                raise LiveDataError(
                    f"the features at bar {stamp} cannot be computed: {err}"
                ) from err
            nan_features = not np.isfinite(data.features[-1]).all()
            if not self.broker.started:
                obs = self.broker.start(data)
            else:
                fill, obs = self.broker.on_bar(data, self.pending)
                self._record_fill(db, seq, stamp, fill)
            t_policy = time.perf_counter()
            decided = np.asarray(self.model.actor(obs), dtype=np.float64).reshape(-1)
            if self.metrics is not None:
                self.metrics.observe_latency("decision", time.perf_counter() - t_policy)
            nan_actions = not np.isfinite(decided).all()
            if nan_features or nan_actions:
                what = "features" if nan_features else "actions"
                alerts += self._note_halt(f"NaN in the {what} at bar {stamp}")
            reason = "policy"
            if self.halted is not None:
                decided, reason = self.settings.flat_action.copy(), "kill_switch"
            self.pending = decided
            self.pending_id = self._add_order(db, seq, stamp, decided, reason)
        if self.alerts is not None and fill is not None:
            alerts += self.alerts.observe_bar(
                {
                    "time": stamp,
                    "equity": fill.equity,
                    "drawdown": fill.drawdown,
                    "bar_return": fill.net_return,
                    "volume": bar.volume.tolist(),
                    "assets": list(self.assets),
                    "risk_clipped": fill.risk_clipped,
                    "nan_features": nan_features,
                    "nan_actions": nan_actions,
                }
            )
        self._record_alerts(alerts, db)
        self.seq = seq + 1
        self._save(db, seq, stamp)
        return fill, decided, alerts, nan_actions

    def _note_halt(self, reason: str) -> list:
        """A NaN observation or action: no order from it; the kill switch engages. The
        kill-switch alert (the NaN alert itself comes from ``observe_bar``)."""
        log.error("%s: the kill switch engages", reason)
        self.event("error", error="ModelError", message=reason)
        fired = []
        if self.halted is None:
            self.halted = reason
            if self.alerts is not None:
                alert = self.alerts.event("kill_switch", f"kill switch engaged: {reason}")
                fired = [alert] if alert is not None else []
        if self.escalation is not None:
            action = self.escalation.failure("model", ModelError(reason))
            if action == "flatten_and_stop":
                self.stop_requested, self.exit_code = True, 3
        return fired

    def _after_commit(self, seq, stamp, bar, fill, decided, t_start) -> None:
        self.event("bar", seq=seq, time=stamp, close=bar.close.tolist(),
                   volume=bar.volume.tolist())  # fmt: skip
        if fill is not None:
            for i, asset in enumerate(self.assets):
                for kind, units, price in (("order", fill.units, fill.price),
                                           ("exit", fill.exit_units, fill.exit_price)):  # fmt: skip
                    if units[i] != 0:
                        self.event("fill", seq=seq, time=stamp, asset=asset, kind=kind,
                                   units=float(units[i]), price=float(price[i]))  # fmt: skip
        if decided is not None:
            self.event("decision", seq=seq, time=stamp, action=decided.tolist(),
                       model=self.model.id, halted=self.halted is not None)  # fmt: skip
            self.event("order", seq=seq, time=stamp, id=self.pending_id, action=decided.tolist())
        if self.metrics is not None:
            closed_at = np.datetime64(bar.timestamp, "ns") + self.gate.bar
            bar_s = float(closed_at.astype("datetime64[s]").astype(np.int64))
            self.metrics.count_bar(bar_s)
            self.metrics.set_ready(self.ready())
            if fill is not None:
                self.metrics.on_bar(
                    fill.equity, fill.cash, fill.drawdown, fill.holdings.tolist(),
                    fill.weights.tolist(), float(np.abs(fill.weights).sum()), bar_s,
                )  # fmt: skip
                self.metrics.on_fill(int((fill.units != 0).sum() + (fill.exit_units != 0).sum()))
            if decided is not None:
                self.metrics.on_order(1)
            self.metrics.observe_latency("bar", time.perf_counter() - t_start)
        every = self.settings.backup_every_bars
        if every and self.seq % every == 0:
            self.snapshot()

    # ------------------------------------------------------------------- records
    def _add_order(self, db, seq: int, stamp: str, action: np.ndarray, reason: str) -> int:
        cur = db.execute(
            "INSERT INTO orders (decided_seq, decided_time, action, model, status) "
            "VALUES (?, ?, ?, ?, 'working')",
            (seq, stamp, _json(action.tolist()), self.model.id),
        )
        if reason != "policy":
            self.store.add_event(db, stamp, "order", {"seq": seq, "reason": reason})
        return int(cur.lastrowid)

    def _record_fill(self, db, seq: int, stamp: str, fill: BarFill) -> None:
        if self.pending_id is not None:
            status = "filled" if (fill.units != 0).any() else "unfilled"
            db.execute(
                "UPDATE orders SET status = ?, filled_seq = ?, filled_time = ? WHERE id = ?",
                (status, seq, stamp, self.pending_id),
            )
        rows = []
        for i, asset in enumerate(self.assets):
            if fill.units[i] != 0:
                rows.append((self.pending_id, seq, stamp, asset, "order", fill.units[i],
                             fill.price[i]))  # fmt: skip
            if fill.exit_units[i] != 0:
                rows.append((None, seq, stamp, asset, "exit", fill.exit_units[i],
                             fill.exit_price[i]))  # fmt: skip
        db.executemany(
            "INSERT INTO fills (order_id, seq, time, asset, kind, units, price) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(o, s, t, a, k, float(u), float(p)) for o, s, t, a, k, u, p in rows],
        )
        db.execute(
            "INSERT INTO equity (seq, time, equity, cash, drawdown, cost, turnover, weights, "
            "holdings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, stamp, fill.equity, fill.cash, fill.drawdown, fill.cost, fill.turnover,
             _json(fill.weights.tolist()), _json(fill.holdings.tolist())),
        )  # fmt: skip

    def _record_alerts(self, alerts: list, db=None) -> None:
        for alert in alerts:
            payload = alert.as_dict()
            self.event("alert", **payload)
            if self.metrics is not None:
                self.metrics.on_alert(alert.rule, alert.severity)
            if db is not None:
                self.store.add_event(db, payload.get("time") or self._now(), "alert", payload)
            else:  # an alert between bars: its cooldown is part of the account state too
                with self.store.transaction() as conn:
                    self.store.add_event(conn, payload.get("time") or self._now(), "alert", payload)
                    self._save(conn)

    def _save(self, db, seq: int | None = None, stamp: str | None = None) -> None:
        last = self.market.last_time
        self.store.save_account(
            db,
            self.seq - 1 if seq is None else seq,
            stamp or (iso(last) if last is not None else ""),
            self.state(),
        )

    def _now(self) -> str:
        last = self.market.last_time
        return iso(last) if last is not None else ""

    # ------------------------------------------------------------------- commands
    def _apply_commands(self, db, seq: int, stamp: str) -> None:
        for cid, kind, payload in self.store.pending_commands():
            try:
                result = self._command(db, kind, payload, seq, stamp)
            except Exception as err:  # a bad command is reported, never fatal
                result = f"refused: {err}"
                log.error("command %s %s %s", kind, payload, result)
            db.execute(
                "UPDATE commands SET applied_seq = ?, result = ? WHERE id = ?", (seq, result, cid)
            )
            self.store.add_event(db, stamp, "command", {"kind": kind, **payload, "result": result})
            self.event("command", kind=kind, result=result, **payload)

    def _command(self, db, kind: str, payload: dict, seq: int, stamp: str) -> str:
        if kind == "resume":
            was, self.halted = self.halted, None
            return "resumed" if was else "was not halted"
        if kind == "flatten":
            reason = payload.get("reason") or "flatten command"
            if self.halted is None:
                self.halted = reason
                self._flatten_order(db)
                if self.alerts is not None:
                    alert = self.alerts.event("kill_switch", f"kill switch engaged: {reason}")
                    self._record_alerts([alert] if alert is not None else [], db)
            return f"kill switch engaged: {reason}"
        if kind in ("switch_model", "rollback"):
            if self.load_model is None:
                raise ValueError("this loop cannot load models")
            if kind == "switch_model":
                path = str(payload["path"])
                reason = f"switch from #{self.model.id}"
            else:
                rows = db.execute("SELECT id, path FROM models ORDER BY id").fetchall()
                ids = [r[0] for r in rows]
                here = ids.index(self.model.id) if self.model.id in ids else len(ids)
                earlier = [r for r in rows[:here] if r[1] != self.model.path]
                if not earlier:
                    raise ValueError("no earlier model to roll back to")
                path = earlier[-1][1]
                reason = f"rollback from #{self.model.id} to #{earlier[-1][0]}"
            slot = self.load_model(path)
            slot.id = record_model(db, slot, seq, stamp, reason)
            self.model = slot
            return f"model #{slot.id} {slot.path} ({reason})"
        raise ValueError(f"unknown command {kind!r}")

    # -------------------------------------------------------------------- backups
    def snapshot(self) -> Path | None:
        """A state snapshot in ``backup_dir`` (the oldest beyond ``keep_backups`` removed)."""
        s = self.settings
        if not s.backup_dir:
            return None
        folder = Path(s.backup_dir)
        path = self.store.backup(folder / f"state-{self.seq:08d}.sqlite")
        snaps = sorted(folder.glob("state-*.sqlite"))
        for old in snaps[: max(0, len(snaps) - s.keep_backups)]:
            old.unlink(missing_ok=True)
        self.event("backup", path=str(path), seq=self.seq)
        return path


def record_model(db, slot: ModelSlot, seq: int | None, stamp: str | None, reason: str) -> int:
    """Insert a models-table row for ``slot`` being activated; its id."""
    cur = db.execute(
        "INSERT INTO models (path, sha256, activated_seq, activated_time, reason) "
        "VALUES (?, ?, ?, ?, ?)",
        (slot.path, slot.sha256, seq, stamp, reason),
    )
    return int(cur.lastrowid)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
