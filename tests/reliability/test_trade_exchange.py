"""`python trade.py feed=exchange deploy=staging` as a service against a local exchange that
fails, stalls and recovers on command: retries, the circuit breaker, escalation to the kill
switch, alerts to a real webhook, /health and /metrics over HTTP, a queued resume command,
SIGTERM, and the webhook's secret nowhere on disk or in the logs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, run_train
from tests.ops.kline_server import KlineServer

pytestmark = pytest.mark.slow
SECRET = "s3cr3t-token-9f8e"
SYMBOLS = ("BTCUSDT", "XRPUSDT")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    run_train(out, "debug=fast", "data=binance_sample")
    return out


def real_rows(last_open: pd.Timestamp) -> dict[str, list]:
    """The shipped 2025 bars, moved in time so that bar 820 opened at ``last_open``: the
    exchange's recent past (closed bars only)."""
    out = {}
    for sym in SYMBOLS:
        df = pd.read_csv(ROOT / "data" / "binance_sample" / f"{sym}_1h_2025.csv")
        ts = pd.to_datetime(df["timestamp"])
        ts = ts + (last_open - ts.iloc[820])
        out[sym] = [(str(t), r.open, r.high, r.low, r.close, r.volume)
                    for t, r in zip(ts, df.itertuples(), strict=True)]  # fmt: skip
    return out


class Webhook(ThreadingHTTPServer):
    """Collects the JSON bodies POSTed to it."""

    def __init__(self):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for(what, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_exchange_service_survives_failures_and_recovers(ckpt, tmp_path):
    state = tmp_path / "state.sqlite"
    rows = real_rows(
        pd.Timestamp.now(tz="UTC").tz_localize(None).floor("h") - pd.Timedelta(hours=2)
    )
    hook = Webhook()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ADAN_ALERT_WEBHOOK_URL":
           f"http://127.0.0.1:{hook.server_address[1]}/hook/{SECRET}"}  # fmt: skip

    def query(sql):
        try:
            with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
                return db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []

    def seq():
        got = query("SELECT bar_seq FROM account")
        return -1 if not got or got[0][0] is None else got[0][0]

    with KlineServer(list(SYMBOLS)) as server:
        for sym in SYMBOLS:
            server.add_bars(sym, rows[sym][:700])
        cmd = [sys.executable, str(ROOT / "trade.py"), f"hydra.run.dir={tmp_path / 'run'}",
               f"persistence.path={state}", f"ckpt_path={ckpt}", "deploy=staging",
               "feed=exchange", "feed.symbols=[BTC/USDT,XRP/USDT]", f"feed.api_url={server.api_url}",
               "feed.history_bars=700", "feed.timeout_s=1", "loop.poll_interval_s=0.1",
               "health.port=0", "resilience.retry.attempts=2", "resilience.retry.initial_s=0.05",
               "resilience.retry.max_s=0.1", "resilience.retry.jitter_s=0.01",
               "resilience.breaker.fail_max=2", "resilience.breaker.reset_timeout_s=1",
               "resilience.escalation.max_consecutive_failures=2"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        try:
            url = wait_for("the health endpoint", lambda: proc.poll() is not None or next(
                (ln.split("health: ")[1].split("/health")[0] for ln in lines
                 if "health: http" in ln and "/health" in ln), None))  # fmt: skip
            assert proc.poll() is None, "".join(lines[-40:])

            def add(k):
                for sym in SYMBOLS:
                    server.add_bars(sym, [rows[sym][k]])

            for k in range(700, 740):  # the first live bars: a full window, then trading
                add(k)
                wait_for(f"bar {k - 700}", lambda k=k: seq() >= k - 700)
            status, body = get(f"{url}/health")
            health = json.loads(body)
            assert (
                status == 200
                and health["ready"] is True
                and health["breakers"] == {"feed": "closed"}
            )
            assert health["last_bar_time"] == rows["BTCUSDT"][739][0].replace(" ", "T")
            status, metrics = get(f"{url}/metrics")
            assert status == 200 and "adan_bars_total 40.0" in metrics
            assert "adan_equity" in metrics and 'adan_breaker_state{service="feed"} 0.0' in metrics

            # a stalled answer times out and is retried
            before = server.kline_requests
            server.set_mode("stall", times=1, seconds=3)
            add(740)
            wait_for("bar 40 after a stall", lambda: seq() >= 40)
            assert server.kline_requests >= before + 2

            # the exchange goes down: retries, the circuit opens, the kill switch engages
            server.set_mode("fail", status=503)
            add(741)
            wait_for("the kill switch", lambda: query(
                "SELECT 1 FROM events WHERE kind = 'kill_switch'"), timeout=30)  # fmt: skip
            status, body = get(f"{url}/health")
            assert status == 503 and json.loads(body)["ready"] is False
            refused = server.requests
            time.sleep(0.5)  # the open circuit does not call the exchange
            assert server.requests == refused
            # it recovers: the half-open probe closes the circuit, bars flow, orders are flat
            server.set_mode("ok")
            for k in range(742, 746):
                add(k)
            wait_for("bars after recovery", lambda: seq() >= 45, timeout=30)
            actions = [json.loads(a) for (a,) in query("SELECT action FROM orders ORDER BY id")]
            assert actions[-4:] == [[0.0, 0.0]] * 4
            # the operator resumes: a queued command applied at the next bar
            subprocess.run([sys.executable, str(ROOT / "trade.py"), "command=resume",
                            f"hydra.run.dir={tmp_path / 'cmd'}", f"persistence.path={state}"],
                           cwd=ROOT, check=True, capture_output=True, timeout=120)  # fmt: skip
            add(746)
            wait_for("bar 46", lambda: seq() >= 46)
            last = json.loads(query("SELECT action FROM orders ORDER BY id DESC LIMIT 1")[0][0])
            assert last != [0.0, 0.0]
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    assert code == 0, "".join(lines[-40:])
    out = "".join(lines)
    assert "stopping after the current bar" in out
    summary = json.loads((tmp_path / "run" / "trade_summary.json").read_text())
    assert summary["bars"] == 47 and summary["halted"] is None
    rules = [b["alert"]["rule"] for b in hook.bodies]
    assert "circuit_open" in rules and "kill_switch" in rules
    assert all("text" in b for b in hook.bodies)  # Slack-compatible
    kinds = {k for (k,) in query("SELECT kind FROM events")}
    assert {"kill_switch", "alert", "command"} <= kinds
    # the webhook URL is a secret: nowhere in the logs, the state or the saved config
    for path in [state, *(tmp_path / "run").rglob("*"), *(tmp_path / "cmd").rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in out
