"""The trade task: paper-trade a trained agent as a long-running service (``trade.py``).

``run`` builds, from the checkpoint and ``conf/trade.yaml``: the feed (replay or exchange), the
live market (the checkpoint's pipeline and scalers), the paper broker (the backtest's trading
desk), the state file, alerts, the health/metrics endpoint, JSON logs, retries, circuit
breakers and the hot-reloaded settings, then runs ``adan.ops.live_loop.TradingLoop``. The
other commands act on the state file: ``status``, ``backup``, ``restore`` (service stopped)
and the queued ``switch_model``, ``rollback``, ``flatten`` and ``resume`` (applied at the
service's next bar).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from adan.checkpoint_format import CONFIG_KEY, DATA_KEY
from adan.data.bars import Bars
from adan.errors import CheckpointError, LiveConfigError, StateMismatchError
from adan.evaluation.backtest import PolicyActor
from adan.evaluation.checkpoint import load_checkpoint, policy_from_checkpoint, resolve_checkpoint
from adan.market.spec import MarketSpec
from adan.ops.broker import PaperBroker
from adan.ops.live_loop import LoopSettings, ModelSlot, TradingLoop, iso, record_model
from adan.ops.live_market import LiveMarket, bars_from_state, bars_state, take_bars
from adan.ops.state_store import StateStore, restore

log = logging.getLogger("adan.trade")
COMMANDS = ("run", "status", "switch_model", "rollback", "flatten", "resume", "backup", "restore")
LIVE_TUNABLE = ("risk", "dbe")  # trading sections a settings file may change at run time


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ----------------------------------------------------------------------------- the model
class Agent:
    """A checkpoint as the service runs it: its config, data contract, trading rules and
    policy."""

    def __init__(self, path: str | Path, profile: str | None = None) -> None:
        self.file = resolve_checkpoint(path)
        self.ckpt = load_checkpoint(self.file)
        if self.ckpt.get(DATA_KEY) is None:
            raise CheckpointError(f"{self.file} was not trained on market data: nothing to trade")
        self.cfg = OmegaConf.create(self.ckpt[CONFIG_KEY])
        self.window = int(self.cfg.env.window)
        self.profile = profile
        self.trading = self.trading_with({})
        self.sha256 = sha256(self.file)

    def trading_with(self, overrides: dict[str, Any]):
        """The checkpoint's trading rules (one profile) with the live-tunable sections in
        ``overrides`` (``risk``, ``dbe``) replaced, validated by the training schema."""
        bad = sorted(set(overrides) - set(LIVE_TUNABLE))
        if bad:
            raise LiveConfigError(
                f"trading.{bad[0]} cannot change while trading (it changes what the agent's "
                f"actions mean); a settings file may change trading.risk and trading.dbe only"
            )
        trading = instantiate(OmegaConf.merge(self.cfg.trading, overrides))
        names = [n for n, _ in trading.profile_configs()]
        if len(names) > 1:
            trading = trading.only(self.profile or names[0])
        return trading

    def contract(self) -> dict[str, Any]:
        """What a replacement model must share: data, window and action space."""
        fitted = self.ckpt[DATA_KEY]
        # the whole of it, risk and dbe included: those change at run time through the
        # settings file only, so a model switch never changes the rules the account runs under
        trading = OmegaConf.to_container(OmegaConf.structured(self.trading), resolve=True)
        return {
            "assets": list(fitted.get("assets") or []),
            "feature_names": list(fitted["feature_names"]),
            "scaler": _digest(fitted.get("scaler")),
            "window": self.window,
            "trading": trading,  # the paper broker's rules
        }

    def slot(self, spec: MarketSpec) -> ModelSlot:
        policy = policy_from_checkpoint(self.ckpt, spec)
        actor = PolicyActor(policy)
        return ModelSlot(lambda obs: actor(obs, None)[0], str(self.file), self.sha256)


def model_loader(first: Agent, spec: MarketSpec, profile: str | None):
    """``load(path) -> ModelSlot`` for the switch and rollback commands: refuses a checkpoint
    whose data contract differs from ``first``'s, naming what differs."""

    def load(path: str) -> ModelSlot:
        other = Agent(path, profile)
        differ = diff(first.contract(), other.contract())
        if differ:
            raise StateMismatchError(f"{other.file} cannot replace the running model: {differ}")
        return other.slot(spec)

    return load


def _digest(value: Any) -> str:
    """A short fingerprint of nested plain values and arrays (the fitted scalers)."""
    from adan.ops.state_store import dumps

    return hashlib.sha256(dumps(value).encode()).hexdigest()[:16]


def diff(a: dict, b: dict, prefix: str = "") -> str:
    """``key: a -> b`` for every (dotted, nested) key whose values differ ('' when none)."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            inner = diff(x, y, f"{prefix}{k}.")
            out += [inner] if inner else []
        elif x != y:
            out.append(f"{prefix}{k}: {x!r} -> {y!r}")
    return "; ".join(out)


# ----------------------------------------------------------------------------- the data
def checkpoint_pipeline(agent: Agent):
    """The checkpoint's data pipeline (no cleaning report written, no cache)."""
    data = OmegaConf.create(agent.ckpt[CONFIG_KEY]["data"])
    for key in ("report_path", "cache_dir"):
        if key in data:
            data[key] = None
    return instantiate(data)


def source_bars(pipeline, test: bool = False) -> Bars:
    """The raw bars of the checkpoint's data (``test``: its separate test period)."""
    src = pipeline.test_source if test else pipeline.source
    return src if isinstance(src, Bars) else src.generate()


@dataclass
class FeedSetup:
    """A feed and what the live market warms up on: ``history`` bars, the checkpoint's
    ``splits`` within them, or ``prefix`` (its train and val splits, for a replay of its
    separate test period)."""

    feed: Any
    history: Bars | None = None
    splits: dict | None = None
    prefix: bool = False


def build_feed(cfg: DictConfig, pipeline) -> FeedSetup:
    """The feed ``cfg.feed`` names, with the history it continues."""
    kind = str(cfg.feed.kind)
    if kind == "replay":
        from adan.ops.feeds.replay import ReplayFeed

        speed = float(cfg.feed.speed)
        if cfg.feed.get("path"):
            from adan.data.sources import FileSource

            path = cfg.feed.path
            source = FileSource(
                path if isinstance(path, str) else list(path),
                assets=cfg.feed.get("assets"),
                report_path=str(Path(str(cfg.paths.output_dir)) / "feed_cleaning_report.json"),
            )
            bars = source.generate()
            history, splits = history_before(pipeline, bars.timestamps[0])
            if history is None:  # nothing before it: its own first bars warm the features up
                first = pipeline._prepare(bars).first_row
                history, bars = take_bars(bars, first), take_bars(bars, len(bars), first)
            return FeedSetup(ReplayFeed(bars, speed, history), history, splits)
        split = str(cfg.feed.split)
        if split == "test" and getattr(pipeline, "test_source", None) is not None:
            # a separate test period: it warms up on its own first bars, as in evaluation
            whole = source_bars(pipeline, test=True)
            first = pipeline._prepare(whole).first_row
            history = take_bars(whole, first)
            feed = ReplayFeed(take_bars(whole, len(whole), first), speed, history)
            return FeedSetup(feed, history, None, prefix=True)
        whole = source_bars(pipeline)
        bounds = pipeline.history_bounds(whole)
        if split not in bounds:
            raise LiveConfigError(
                f"feed.split={split!r}: the checkpoint's data has splits {sorted(bounds)}"
            )
        first = pipeline._prepare(whole).first_row
        start, stop = (first + b for b in bounds[split])
        history = take_bars(whole, start)
        feed = ReplayFeed(take_bars(whole, stop, start), speed, history)
        return FeedSetup(feed, history, bounds)
    if kind == "exchange":
        from adan.ops.feeds.exchange import ExchangeFeed

        f = cfg.feed
        feed = ExchangeFeed(
            str(f.exchange),
            list(f.symbols),
            timeframe=str(f.timeframe),
            api_url=f.get("api_url"),
            history_bars=int(f.history_bars),
            timeout_s=float(f.timeout_s),
        )
        return FeedSetup(feed)
    raise LiveConfigError(f"feed.kind must be replay or exchange, got {kind!r}")


def history_before(pipeline, first_live: np.datetime64) -> tuple[Bars | None, dict | None]:
    """The checkpoint's own bars before ``first_live`` when the live bars continue them
    (its next bar, or within it), with its split ranges; else (None, None)."""
    try:
        whole = source_bars(pipeline)
    except (OSError, ValueError) as err:
        log.warning("the checkpoint's own data cannot be read (%s): no warm-up history", err)
        return None, None
    stop = int(np.searchsorted(whole.timestamps, first_live))
    if stop == 0:
        return None, None
    step = np.timedelta64(int(whole.bar_ns or 0), "ns")
    if not whole.bar_ns:  # the bars' own spacing
        step = np.median(np.diff(whole.timestamps[-100:])) if len(whole) > 1 else step
    gap = first_live - whole.timestamps[stop - 1]
    if gap > step:
        log.info("the feed starts %s after the checkpoint's data: no shared history", gap)
        return None, None
    return take_bars(whole, stop), pipeline.history_bounds(whole)


# ----------------------------------------------------------------------------- settings
def deploy_check(cfg: DictConfig) -> None:
    """A deploy profile's ``require`` list: every key named must be set (not null or empty),
    and every environment variable it names must exist; the refusal names each one."""
    import os

    missing = []
    for key in cfg.deploy.get("require") or []:
        value = OmegaConf.select(cfg, str(key), default=None)
        if value in (None, "", []):
            missing.append(f"{key} (not set)")
    for var in cfg.deploy.get("require_env") or []:
        if not os.environ.get(str(var)):
            missing.append(f"${var} (environment variable not set)")
    if missing:
        raise LiveConfigError(
            f"deploy={cfg.deploy.name} refuses to start without: {', '.join(missing)}"
        )


# ----------------------------------------------------------------------------- the state
def identity(agent: Agent, cfg: DictConfig, bar_ns: int) -> dict[str, Any]:
    """What a state file belongs to: refused on start when any of it differs."""
    feed: dict[str, Any] = {"kind": str(cfg.feed.kind)}
    if feed["kind"] == "replay":
        path = cfg.feed.get("path")
        feed.update(path=None if path is None else str(path), split=str(cfg.feed.split))
    if feed["kind"] == "exchange":
        feed.update(exchange=str(cfg.feed.exchange), symbols=list(cfg.feed.symbols),
                    timeframe=str(cfg.feed.timeframe))  # fmt: skip
    return {**agent.contract(), "bar_ns": int(bar_ns), "feed": feed}


@contextmanager
def service_lock(path: Path) -> Iterator[None]:
    """Hold ``<state>.lock`` while the service runs: a second service on one state file, or a
    restore under a running one, is refused."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LiveConfigError(
                f"{path} is in use by a running trade.py (lock {lock}); stop it first"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def trade(cfg: DictConfig) -> dict[str, Any]:
    """Run ``cfg.command`` (see the module docstring); returns what it reports."""
    command = str(cfg.command)
    if command not in COMMANDS:
        raise LiveConfigError(f"command must be one of {list(COMMANDS)}, got {command!r}")
    path = Path(str(cfg.persistence.path)).expanduser()
    if command == "restore":
        if not cfg.get("backup"):
            raise LiveConfigError("command=restore needs backup=<snapshot file>")
        with service_lock(path):
            restore(str(cfg.backup), path)
        log.info("restored %s from %s", path, cfg.backup)
        return {"restored": str(path), "from": str(cfg.backup)}
    if command != "run":
        if not path.is_file():
            raise LiveConfigError(f"persistence.path={path}: no state file (run trade.py first)")
        store = StateStore(path)
        try:
            return _offline_command(cfg, command, store)
        finally:
            store.close()
    deploy_check(cfg)
    with service_lock(path):
        return run_service(cfg, path)


def _offline_command(cfg: DictConfig, command: str, store: StateStore) -> dict[str, Any]:
    if command == "status":
        return status_of(store)
    if command == "backup":
        target = cfg.get("backup") or str(
            Path(str(cfg.persistence.backup_dir)) / "state-manual.sqlite"
        )
        out = store.backup(target)
        log.info("snapshot written: %s", out)
        return {"backup": str(out)}
    payload: dict[str, Any] = {}
    if command == "switch_model":
        if not cfg.get("model_path"):
            raise LiveConfigError("command=switch_model needs model_path=<checkpoint or run dir>")
        new = Agent(str(cfg.model_path))  # refused here already if it cannot be read
        payload["path"] = str(new.file)
    if command == "flatten":
        payload["reason"] = str(cfg.get("reason") or "flatten command")
    cid = store.queue_command(command, payload)
    log.info("queued %s #%d: the service applies it at its next bar", command, cid)
    return {"queued": command, "id": cid, **payload}


def status_of(store: StateStore) -> dict[str, Any]:
    account = store.account()
    models = store.table("models")
    out = {
        "bars": len(store.table("bars")),
        "last_bar": None,
        "equity": None,
        "halted": None,
        "model": models[-1] if models else None,
        "pending_commands": [k for _, k, _ in store.pending_commands()],
    }
    if account is not None:
        equity = store.table("equity")
        out.update(
            last_bar=store.conn.execute("SELECT bar_time FROM account").fetchone()[0],
            equity=equity[-1]["equity"] if equity else None,
            halted=account.get("halted"),
        )
    print(json.dumps(out, indent=2, default=str))
    return out


# ----------------------------------------------------------------------------- run
@dataclass
class Service:
    """A trading service ready to run: the loop and what must be closed after it."""

    loop: TradingLoop
    store: StateStore
    alerts: Any
    server: Any
    guard: Any
    run_dir: Path

    def close(self) -> None:
        self.alerts.close()
        if self.server is not None:
            self.server.stop()
        self.loop.feed.close()
        self.store.close()


def run_service(cfg: DictConfig, path: Path) -> dict[str, Any]:
    """Open the service on the state file ``path``, run it until it ends, summarise."""
    service = open_service(cfg, path)
    loop, server = service.loop, service.server

    def on_signal(signum, frame) -> None:
        log.warning("signal %d: stopping after the current bar", signum)
        loop.stop_requested = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        if server is not None:
            server.start()
            log.info("health: %s/health, metrics: %s/metrics", server.url, server.url)
        code = loop.run()
        summary = _summary(service.store, loop, code)
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.close()
    (service.run_dir / "trade_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    log.info("trade summary: %s", json.dumps(summary, default=str))
    if code:
        raise SystemExit(code)
    return summary


def open_service(cfg: DictConfig, path: Path) -> Service:
    """Build every part from the checkpoint and ``cfg`` and open (or resume) the state file
    ``path``; nothing runs yet."""
    from adan.ops.alerts import AlertManager, AlertsConfig
    from adan.ops.channels import build_channels
    from adan.ops.resilience import ResilienceConfig

    # observability and resilience first: the history fetch already goes through them
    run_dir = Path(str(cfg.paths.output_dir))
    events = _event_sink(cfg, run_dir)
    alerts_cfg = AlertsConfig.from_mapping(OmegaConf.to_container(cfg.alerts, resolve=True))
    res = ResilienceConfig.from_mapping(OmegaConf.to_container(cfg.resilience, resolve=True))
    store = StateStore(path)
    agent, first_agent, active = _models(cfg, store, path)
    alerts = AlertManager(alerts_cfg, build_channels(cfg.alerts.get("channels")))
    loop_holder: dict[str, TradingLoop] = {}
    metrics_holder: dict[str, Any] = {}

    def on_breaker(service: str, old: str, new: str) -> None:
        if "metrics" in metrics_holder:
            metrics_holder["metrics"].set_breaker(service, new)
        if new == "open":
            alert = alerts.event("circuit_open", f"circuit {service} opened (was {old})",
                                 key=service, service=service)  # fmt: skip
            if alert is not None and "loop" in loop_holder:
                loop_holder["loop"]._record_alerts([alert])

    guard = res.guard("feed", on_state_change=on_breaker)

    pipeline = checkpoint_pipeline(first_agent)
    fitted = first_agent.ckpt[DATA_KEY]
    setup = build_feed(cfg, pipeline)
    feed, history, splits, prefix = setup.feed, setup.history, setup.splits, setup.prefix
    saved_history = store.history()
    if saved_history is not None:  # a restart: the very bars traded before
        history = bars_from_state(saved_history["bars"])
        splits = saved_history.get("splits")
        splits = None if splits is None else {k: tuple(v) for k, v in splits.items()}
        prefix = bool(saved_history.get("prefix"))
    elif history is None:
        history = guard.call(feed.history, None, int(cfg.feed.get("history_bars") or 0))
        splits = None
    if history is None:
        raise LiveConfigError(
            "no warm-up history: the feed's bars do not continue the checkpoint's data and the "
            "feed gave none (feed.history_bars)"
        )
    before = None
    if prefix:
        built = pipeline.build(fitted=fitted)
        before = {k: built[k] for k in ("train", "val") if k in built}
    market = LiveMarket(pipeline, fitted, history, splits, before)
    ident = identity(first_agent, cfg, int(history.bar_ns or feed.bar_ns))
    meta = store.meta()
    if meta.get("identity") is not None and meta["identity"] != ident:
        raise StateMismatchError(
            f"{path} belongs to another setup ({diff(meta['identity'], ident)}): use its own "
            "config, or a new persistence.path"
        )

    spec = MarketSpec.of(_shape_data(market, pipeline, fitted), agent.trading, window=agent.window)
    slot = agent.slot(spec)
    slot.id = active[-1]["id"] if active else 0
    broker = PaperBroker(agent.trading, agent.window, spec.bars_per_year)
    metrics, server = _health(cfg, market.assets)
    metrics_holder["metrics"] = metrics
    metrics.set_breaker("feed", guard.state)
    flat = np.zeros(len(market.assets))
    if agent.trading.action_mode == "discrete":
        flat = np.full(len(market.assets), 1.0 if agent.trading.allow_short else 0.0)
    settings = LoopSettings(
        poll_interval_s=float(cfg.loop.poll_interval_s),
        stale_after_s=cfg.feed.get("stale_after_s"),
        max_fill_bars=int(cfg.feed.max_fill_bars),
        backup_every_bars=int(cfg.persistence.backup_every_bars),
        keep_backups=int(cfg.persistence.keep_backups),
        backup_dir=None if cfg.persistence.backup_dir is None else str(cfg.persistence.backup_dir),
        max_bars=cfg.loop.get("max_bars"),
        flat_action=flat,
    )
    loop = TradingLoop(
        feed, market, broker, slot, store, settings,
        load_model=model_loader(first_agent, spec, cfg.get("profile")),
        alerts=alerts, metrics=metrics, guard=guard, escalation=res.escalation,
        events=events,
    )  # fmt: skip
    loop_holder["loop"] = loop
    loop.watcher = _watcher(cfg, agent, broker, alerts, loop)

    account = store.account()
    if account is None:  # a new file; the account row comes in the same transaction, so a
        # stop before the first bar restarts as a resume, never as a second first start
        with store.transaction() as db:
            store.set_meta({"identity": ident, "checkpoint": str(agent.file)})
            if saved_history is None:
                store.save_history(
                    db, {"bars": bars_state(history), "splits": splits, "prefix": prefix}
                )
            if not active:
                slot.id = record_model(db, slot, None, None, "start")
            loop._save(db)
        log.info("new state file %s", path)
    else:
        _resume(loop, account, store, feed, events)
    if server is not None:
        server.status = lambda: _status(loop, guard)
    return Service(loop, store, alerts, server, guard, run_dir)


def _models(cfg: DictConfig, store: StateStore, path: Path) -> tuple[Agent, Agent, list]:
    """(the model to run, the state's first model, the models table). A restart runs the
    state's active model; a ``ckpt_path`` that is not it is refused."""
    active = store.table("models")
    ckpt_path = cfg.get("ckpt_path")
    profile = cfg.get("profile")
    if not active:
        if not ckpt_path:
            raise LiveConfigError("ckpt_path=<checkpoint or run dir> is required to start")
        agent = Agent(ckpt_path, profile)
        return agent, agent, active
    current = active[-1]
    if ckpt_path:  # the service's own unit file names a model it ran: fine, it runs the active one
        digest = sha256(resolve_checkpoint(ckpt_path))
        if digest not in {m["sha256"] for m in active}:
            raise StateMismatchError(
                f"{path} runs model #{current['id']} {current['path']} (sha256 "
                f"{current['sha256'][:12]}), and never ran {ckpt_path}: change models with "
                "command=switch_model, or start a new state with persistence.path=..."
            )
        if digest != current["sha256"]:
            log.info("%s was switched to model #%d %s; running that", path, current["id"],
                     current["path"])  # fmt: skip
    return Agent(current["path"], profile), Agent(active[0]["path"], profile), active


def _resume(loop: TradingLoop, account: dict, store: StateStore, feed, events) -> None:
    """Rebuild the market from the bars traded, restore the account, skip the feed past the
    last bar traded."""
    from adan.ops.feeds.base import FIELDS, FeedBar

    if account.get("model_id") not in (None, loop.model.id):
        raise StateMismatchError(
            f"the saved account ran model #{account['model_id']}, the state's active model is "
            f"#{loop.model.id}: the state file was edited"
        )
    for rec in store.live_bars():
        bar = FeedBar.of(np.datetime64(rec["time"]), **{k: rec[k] for k in FIELDS})
        loop.market.append(bar, bool(rec["filled"]))
    loop.restore(account)
    last = loop.market.last_time
    loop.gate.last_time = last
    loop.gate.last_close = loop.market.bars().close[-1]
    if last is not None and hasattr(feed, "seek"):
        feed.seek(last)
    log.info("resuming %s after bar %s (%d bars traded)", store.path, iso(last), loop.seq)
    events("resume", {"after": None if last is None else iso(last), "seq": loop.seq})


def _shape_data(market: LiveMarket, pipeline, fitted):
    """Bars shaped as the policy's inputs (assets, features, timeframes) and clocked as the
    live bars, to build its spaces before the first live window exists: the history itself
    when it outlasts the warm-up, else the checkpoint's own training split."""
    bars = market.bars()
    first = pipeline._prepare(bars).first_row
    if len(bars) - first > 2:
        return pipeline.build_live(bars, fitted, first, None)
    return pipeline.build(fitted=fitted)["train"]


def _status(loop: TradingLoop, guard) -> dict[str, Any]:
    last = loop.market.last_time
    return {
        "ready": loop.ready(),
        "last_bar_time": None if last is None else iso(last),
        "bars": loop.seq,
        "feed": loop.feed_state,
        "breakers": {"feed": guard.state},
        "halted": loop.halted,
        "model_version": {"id": loop.model.id, "path": loop.model.path},
        "equity": loop.last_equity,
    }


def _summary(store: StateStore, loop: TradingLoop, code: int) -> dict[str, Any]:
    equity = store.table("equity")
    orders = store.table("orders")
    return {
        "exit_code": code,
        "bars": loop.seq,
        "last_bar": None if loop.market.last_time is None else iso(loop.market.last_time),
        "equity": equity[-1]["equity"] if equity else None,
        "orders": len(orders),
        "fills": len(store.table("fills")),
        "alerts": len(store.events("alert")),
        "halted": loop.halted,
        "model": {"id": loop.model.id, "path": loop.model.path},
        "state": str(store.path),
    }


def _event_sink(cfg: DictConfig, run_dir: Path):
    from adan.ops.json_logging import JsonLoggingConfig, configure_json_logging, log_event

    conf = JsonLoggingConfig.from_mapping(OmegaConf.to_container(cfg.logging, resolve=True))
    # every event goes to the JSON file; the console keeps the human log of adan.trade
    events_log = logging.getLogger("adan.trade.events")
    events_log.propagate = False
    events_log.setLevel(logging.INFO)
    if conf.enabled:
        handler = configure_json_logging(
            conf.path, conf.max_bytes, conf.backups, conf.level, logger_name="adan.trade"
        )
        if handler not in events_log.handlers:
            events_log.addHandler(handler)

    def sink(kind: str, fields: dict) -> None:
        log_event(events_log, kind, **fields)

    return sink


def _health(cfg: DictConfig, assets):
    from adan.ops.health import HealthConfig, TradingMetrics

    conf = HealthConfig.from_mapping(OmegaConf.to_container(cfg.health, resolve=True))
    metrics = TradingMetrics(list(assets))
    if not conf.enabled:
        return metrics, None
    return metrics, conf.server(metrics, lambda: {"ready": False})


def _watcher(cfg, agent: Agent, broker: PaperBroker, alerts, loop: TradingLoop):
    """The hot-reloaded settings file (``live.settings_path``): trading.risk / trading.dbe and
    alerts, validated like the config they change; None when no file is configured."""
    from adan.ops.alerts import AlertsConfig
    from adan.ops.hot_reload import SettingsWatcher

    target = cfg.live.get("settings_path")
    if not target:
        return None
    base_alerts = OmegaConf.to_container(cfg.alerts, resolve=True)

    def validate(doc: dict) -> tuple:
        doc = dict(doc or {})
        bad = sorted(set(doc) - {"trading", "alerts"})
        if bad:
            raise LiveConfigError(f"{bad[0]} is not live-tunable; a settings file holds trading "
                                  "(risk, dbe) and alerts")  # fmt: skip
        trading = agent.trading_with(dict(doc.get("trading") or {}))
        if broker.started:
            broker.check(trading, loop.market.data())
        merged = OmegaConf.to_container(OmegaConf.merge(base_alerts, doc.get("alerts") or {}))
        return trading, AlertsConfig.from_mapping(merged)

    def apply(value: tuple) -> None:
        trading, new_alerts = value
        broker.reconfigure(trading)
        alerts.reconfigure(new_alerts)
        log.info("settings reloaded from %s", target)
        loop.event("settings", path=str(target), trading=asdict(trading)["risk"])
        with loop.store.transaction() as db:
            loop.store.add_event(db, loop._now(), "settings", {"path": str(target)})

    return SettingsWatcher(Path(str(target)), validate, apply, logger=log)
