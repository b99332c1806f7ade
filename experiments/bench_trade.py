"""What one live bar costs ``trade.py``, as the history it recomputes grows.

The live loop recomputes every feature over the whole history at each bar (exact, see
``adan.ops.live_market``), so its cost per bar grows with the history. For histories of
H bars of the default synthetic market (2 assets, the 9 default features, regimes), this
times the two parts of a bar that depend on H, each the median of ``--bars`` consecutive bars:

- ``features``: ``LiveMarket.data()`` (features, scalers, regimes over the whole history);
- ``fill``: ``PaperBroker.on_bar`` (the one-account simulator rebuilt over the live bars and
  stepped with a random order).

The policy's forward pass does not depend on H and is left out (about a millisecond for the
default CNN on one observation). Nothing else runs during the measurement; the machine's load
average is printed beside the table.

    python experiments/bench_trade.py                 # writes results/bench_trade.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from adan.data import SyntheticMarket
from adan.data.pipeline import MarketPipeline
from adan.data.schema import MarketPipelineSchema
from adan.market.config import TradingConfig
from adan.ops.broker import PaperBroker
from adan.ops.live_market import LiveMarket, take_bars

WINDOW = 32
LIVE = 400  # live bars before the timed ones (a long-running account)


def bench(history: int, bars: int, seed: int = 0) -> dict[str, float]:
    features = list(OmegaConf.structured(MarketPipelineSchema).features)
    total = history + LIVE + bars
    src = SyntheticMarket(n_assets=2, n_bars=total, seed=seed).generate()
    pipe = MarketPipeline(src, features, cache_dir=None)
    fitted = {k: pipe.build()["train"].meta[k] for k in ("scaler", "feature_names")}
    market = LiveMarket(pipe, fitted, take_bars(src, history))
    from adan.ops.feeds.replay import ReplayFeed

    feed = ReplayFeed(src, 0.0)
    feed.seek(src.timestamps[history - 1])
    broker = PaperBroker(TradingConfig(), WINDOW)
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {"features": [], "fill": []}
    for k in range(LIVE + bars):
        (bar,) = feed.poll()
        market.append(bar)
        if market.traded_bars() < WINDOW:
            continue
        t0 = time.perf_counter()
        data = market.data()
        t1 = time.perf_counter()
        if not broker.started:
            broker.start(data)
        else:
            broker.on_bar(data, rng.uniform(-1, 1, (1, 2)))
        t2 = time.perf_counter()
        if k >= LIVE:
            times["features"].append(t1 - t0)
            times["fill"].append(t2 - t1)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--histories", type=int, nargs="+", default=[2000, 5000, 20000, 50000])
    ap.add_argument("--bars", type=int, default=50)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_trade.md"))
    args = ap.parse_args()
    rows = []
    for h in args.histories:
        r = bench(h, args.bars)
        total = r["features"] + r["fill"]
        rows.append(
            f"| {h:,} | {1e3 * r['features']:.1f} | {1e3 * r['fill']:.1f} | {1e3 * total:.1f} "
            f"| {3600 / total:,.0f} |"
        )
        print(rows[-1], flush=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    text = "\n".join(
        [
            "# trade.py: the cost of one live bar against the history it recomputes",
            "",
            f"`python experiments/bench_trade.py` (2 synthetic assets, 9 features, regimes; "
            f"median of {args.bars} bars after {LIVE} live bars; one process, nothing else "
            f"running; load average {load}).",
            "",
            "| history (bars) | features (ms) | fill (ms) | per bar (ms) | bars per hour of CPU |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "An hourly bar leaves 3,600 s; a minute bar 60 s. The cost is linear in the history: a "
            "service that runs for years recomputes years of bars at every bar.",
        ]
    )
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
