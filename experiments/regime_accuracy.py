"""How well `MarketRegimeDetector` reads the synthetic market's true regimes from prices.

The market is the default of ``data=synthetic`` (conf/data/synthetic.yaml: 2 assets, 20,000
hourly bars, ``SyntheticMarket(seed=...)`` defaults). The rules' defaults were tuned on seeds
0-4 (``--tune`` repeats that coordinate search; among the near-equal configurations of its
plateau, the design choices were compared on seeds 10-19); the report's headline numbers are
on the held-out seeds 5-9 and 42 (42 is the default training seed of conf/train.yaml), never
used for any choice.

- ``rules``: no fitting, labels every bar of the history (warm-up bars included).
- ``hmm``: fitted on the first 70 % of the bars (the pipeline's train fraction), then
  forward-filtered over the whole history; scored on the last 30 % only (out of sample), and
  ``rules@test`` gives the rules' score on the same bars for comparison.

    python experiments/regime_accuracy.py            # table + confusion matrices, writes
                                                     # experiments/results/regime_accuracy.md
    python experiments/regime_accuracy.py --tune     # also redo the threshold search (seeds 0-4)
    python experiments/regime_accuracy.py --quick    # seeds 0 and 5 only, no file written
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import numpy as np

from adan.data.regime_detection import (
    MarketRegimeDetector,
    RegimeConfig,
    balanced_accuracy,
    confusion_matrix,
)
from adan.data.regimes import REGIME_NAMES
from adan.data.synthetic import SyntheticMarket

TUNE_SEEDS = (0, 1, 2, 3, 4)
HELD_OUT_SEEDS = (5, 6, 7, 8, 9, 42)
MARKET = {"n_assets": 2, "n_bars": 20000}  # conf/data/synthetic.yaml
TRAIN_FRACTION = 0.7
SEGMENTS = ((0, 2000), (2000, 5000), (5000, 10000), (10000, 20000))
LAG_BUCKETS = ((0, 12), (12, 24), (24, 48), (48, 96), (96, None))
RESULTS = Path(__file__).parent / "results" / "regime_accuracy.md"
TUNE_GRID = {
    "vol_span": [12, 16, 24, 32, 48],
    "vol_ref_span": [2000, 5000, 10000, 20000],
    "trend_span": [48, 64, 96, 128, 192],
    "adx_period": [14, 20, 28, 40, 56],
    "volatile_threshold": [0.2, 0.25, 0.3, 0.35, 0.4],
    "quiet_threshold": [-0.6, -0.5, -0.45, -0.4, -0.35],
    "calm_threshold": [-0.35, -0.3, -0.25, -0.2, -0.15, -0.1, 0.0],
    "adx_threshold": [12.0, 15.0, 18.0, 20.0, 22.0, 25.0, 30.0],
}


def recalls(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    cm = confusion_matrix(true, pred)
    return np.diag(cm) / np.maximum(cm.sum(axis=1), 1)


def lag_stats(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Bars from each true regime switch to the first bar labelled with the new regime."""
    starts = np.flatnonzero(np.diff(true)) + 1
    stops = np.append(starts[1:], len(true))
    lags, missed = [], 0
    for s, e in zip(starts, stops, strict=True):
        hit = np.flatnonzero(pred[s:e] == true[s])
        if len(hit):
            lags.append(int(hit[0]))
        else:
            missed += 1
    return {
        "switches": len(starts),
        "median": float(np.median(lags)) if lags else float("nan"),
        "mean": float(np.mean(lags)) if lags else float("nan"),
        "missed": missed / max(len(starts), 1),
    }


def bars_since_switch(true: np.ndarray) -> np.ndarray:
    idx = np.arange(len(true))
    start = np.where(np.diff(true, prepend=true[0] - 1) != 0, idx, 0)
    return idx - np.maximum.accumulate(start)


def recall_by_age(true: np.ndarray, pred: np.ndarray) -> list[float]:
    """Accuracy by bars since the last true switch (how fast the detector catches up)."""
    age = bars_since_switch(true)
    out = []
    for lo, hi in LAG_BUCKETS:
        m = (age >= lo) & (age < (hi if hi is not None else len(true)))
        out.append(float(np.mean(pred[m] == true[m])) if m.any() else float("nan"))
    return out


def evaluate(seed: int) -> dict:
    bars = SyntheticMarket(seed=seed, **MARKET).generate()
    y, n_train = bars.regimes, int(TRAIN_FRACTION * len(bars))
    t0 = time.perf_counter()
    rules = MarketRegimeDetector().detect(bars.high, bars.low, bars.close)
    t_rules = time.perf_counter() - t0
    per_asset = MarketRegimeDetector().detect_assets(bars.high, bars.low, bars.close)
    t0 = time.perf_counter()
    hmm_det = MarketRegimeDetector(RegimeConfig(method="hmm"))
    hmm_det.fit(bars.high[:n_train], bars.low[:n_train], bars.close[:n_train])
    t_fit = time.perf_counter() - t0
    hmm = hmm_det.detect(bars.high, bars.low, bars.close)
    return {
        "seed": seed,
        "true": y,
        "rules": rules,
        "hmm": hmm,
        "n_train": n_train,
        "asset_acc": [balanced_accuracy(y, per_asset[:, i]) for i in range(per_asset.shape[1])],
        "t_rules": t_rules,
        "t_fit": t_fit,
    }


def rows(results: list[dict]) -> list[tuple]:
    out = []
    for r in results:
        y, n = r["true"], r["n_train"]
        for name, true, pred in (
            ("rules", y, r["rules"]),
            ("rules@test", y[n:], r["rules"][n:]),
            ("hmm@test", y[n:], r["hmm"][n:]),
        ):
            out.append((name, r["seed"], balanced_accuracy(true, pred), *recalls(true, pred)))
    return out


def table(results: list[dict]) -> str:
    head = "| method | seed | balanced acc | " + " | ".join(REGIME_NAMES) + " |"
    lines = [head, "|" + "---|" * (3 + len(REGIME_NAMES))]
    for name, seed, acc, *rec in rows(results):
        lines.append(
            f"| {name} | {seed} | {acc:.3f} | " + " | ".join(f"{x:.2f}" for x in rec) + " |"
        )
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    by = {}
    for name, _, acc, *_ in rows(results):
        by.setdefault(name, []).append(acc)
    return "\n".join(
        f"- {k}: mean {np.mean(v):.3f}, min {np.min(v):.3f}, max {np.max(v):.3f}"
        for k, v in by.items()
    )


def confusion_md(results: list[dict], method: str, test_only: bool) -> str:
    cm = sum(
        confusion_matrix(
            r["true"][r["n_train"] :] if test_only else r["true"],
            r[method][r["n_train"] :] if test_only else r[method],
        )
        for r in results
    )
    frac = cm / cm.sum(axis=1, keepdims=True)
    lines = [
        "| true \\ predicted | " + " | ".join(REGIME_NAMES) + " |",
        "|" + "---|" * (1 + len(REGIME_NAMES)),
    ]
    for i, name in enumerate(REGIME_NAMES):
        cells = " | ".join(f"{frac[i, j]:.2f} ({cm[i, j]})" for j in range(len(REGIME_NAMES)))
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def lag_md(results: list[dict]) -> str:
    lines = [
        "| method | switches | median lag | mean lag | never caught | "
        + " | ".join(f"acc {lo}-{hi if hi else 'end'} bars" for lo, hi in LAG_BUCKETS)
        + " |",
        "|" + "---|" * (5 + len(LAG_BUCKETS)),
    ]
    for method, test_only in (("rules", False), ("hmm", True)):
        y = np.concatenate([r["true"][r["n_train"] :] if test_only else r["true"] for r in results])
        p = np.concatenate([r[method][r["n_train"] :] if test_only else r[method] for r in results])
        # concatenation joins histories; the extra switches at the joins are few and harmless
        lag, by_age = lag_stats(y, p), recall_by_age(y, p)
        name = f"{method}{'@test' if test_only else ''}"
        lines.append(
            f"| {name} | {lag['switches']} | {lag['median']:.0f} | {lag['mean']:.1f} | "
            f"{lag['missed']:.1%} | " + " | ".join(f"{x:.2f}" for x in by_age) + " |"
        )
    return "\n".join(lines)


def segments_md(results: list[dict]) -> str:
    """Rules' balanced accuracy by position in the history (the long-run volatility level
    needs history to settle), mean and min over ``results``."""
    accs = np.array(
        [[balanced_accuracy(r["true"][a:b], r["rules"][a:b]) for a, b in SEGMENTS] for r in results]
    )
    head = "| bars | " + " | ".join(f"{a}-{b}" for a, b in SEGMENTS) + " |"
    return "\n".join(
        [
            head,
            "|" + "---|" * (1 + len(SEGMENTS)),
            "| mean | " + " | ".join(f"{x:.3f}" for x in accs.mean(axis=0)) + " |",
            "| min | " + " | ".join(f"{x:.3f}" for x in accs.min(axis=0)) + " |",
        ]
    )


def summ(results: list[dict], method: str) -> str:
    accs = [acc for name, _, acc, *_ in rows(results) if name == method]
    return f"{np.mean(accs):.3f}, min {np.min(accs):.3f}"


def lag_stats_pooled(results: list[dict]) -> str:
    return f"{np.median([lag_stats(r['true'], r['rules'])['median'] for r in results]):.0f}"


def tune(seeds: tuple[int, ...]) -> RegimeConfig:
    """Coordinate search of the rules' parameters (two passes) on ``seeds``."""
    markets = [SyntheticMarket(seed=s, **MARKET).generate() for s in seeds]

    def score(cfg: RegimeConfig) -> float:
        det = MarketRegimeDetector(cfg)
        return float(
            np.mean(
                [balanced_accuracy(b.regimes, det.detect(b.high, b.low, b.close)) for b in markets]
            )
        )

    cfg = RegimeConfig()
    best = score(cfg)
    print(f"tuning on seeds {seeds}: defaults score {best:.4f}")
    for _ in range(2):
        for key, values in TUNE_GRID.items():
            for value in values:
                try:
                    cand = dataclasses.replace(cfg, **{key: value})
                except ValueError:
                    continue
                s = score(cand)
                if s > best + 1e-4:
                    best, cfg = s, cand
            print(f"  {key} = {getattr(cfg, key)}  -> {best:.4f}")
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tune", action="store_true", help="redo the threshold search")
    parser.add_argument("--quick", action="store_true", help="seeds 0 and 5 only, no file")
    args = parser.parse_args()
    if args.tune:
        print(tune(TUNE_SEEDS))
    tune_seeds, held_seeds = ((0,), (5,)) if args.quick else (TUNE_SEEDS, HELD_OUT_SEEDS)
    t0 = time.perf_counter()
    tuned = [evaluate(s) for s in tune_seeds]
    held = [evaluate(s) for s in held_seeds]
    elapsed = time.perf_counter() - t0
    t_rules = np.mean([r["t_rules"] for r in tuned + held]) * 1e3
    t_fit = np.mean([r["t_fit"] for r in tuned + held])
    asset_acc = np.mean([r["asset_acc"] for r in held], axis=0)

    report = f"""# Regime detection accuracy on the default synthetic market

Generated by `python experiments/regime_accuracy.py` ({platform.python_version()},
{platform.machine()}); runs in ~{elapsed:.0f} s. Market: `SyntheticMarket(n_assets=2,
n_bars=20000, seed=...)` as in conf/data/synthetic.yaml. Balanced accuracy = mean recall of the
four regimes (chance 0.25); columns bull..volatile are per-class recalls.

- `rules`: `MarketRegimeDetector()` defaults, every bar of the history (the first 96 warm-up
  bars are labelled sideways and count as they are).
- `hmm@test`: `RegimeConfig(method="hmm")`, fitted on the first 70 % of the bars, forward
  filtered, scored on the last 30 % (6,000 bars); `rules@test`: the rules on the same bars.

Defaults were tuned on seeds {list(TUNE_SEEDS)} (design choices among the near-equal tuned
configurations compared on seeds 10-19); seeds {list(HELD_OUT_SEEDS)} are held out and were
never used for a choice (42 is the default training seed).

## Held-out seeds

{table(held)}

{summary(held)}

Rules by position in the history (held-out seeds):

{segments_md(held)}

## Tuning seeds

{table(tuned)}

{summary(tuned)}

## Confusion matrices (held-out seeds pooled; rows true, columns predicted; row share (count))

Rules, whole histories:

{confusion_md(held, "rules", test_only=False)}

HMM, last 30 % of each history:

{confusion_md(held, "hmm", test_only=True)}

## Detection lag (held-out seeds pooled)

Lag = bars from a true regime switch to the first bar labelled with the new regime ("never
caught": the regime ended first). `acc a-b bars`: accuracy on bars a to b after the last
switch.

{lag_md(held)}

## Notes

- Held-out result against the 0.7 target: rules over whole histories, mean
  {summ(held, "rules")}; on the last 30 % of each history, where the long-run volatility
  level has settled, {summ(held, "rules@test")}.
- History matters: the volatility rule is relative (the realised volatility against its own
  long-run causal level), so the first ~2,000 bars, where that level is an average of one or
  two regimes only, are weak (see the table by position). Detect on the whole contiguous
  history (train + val + test) and slice; labels are causal, so that leaks nothing, while
  detecting on a short split alone would start that split cold.
- Detection lag: median {lag_stats_pooled(held)} bars from a switch to the first correct
  label; accuracy is ~0.3 in the first 12 bars of a regime and ~0.8 after 48 bars.
- Per-asset labels (`detect_assets`) against the market-wide truth, held-out mean per asset:
  {", ".join(f"{a:.3f}" for a in asset_acc)}; one asset carries less evidence than the
  average over both.
- Speed: rules {t_rules:.1f} ms for 20,000 bars x 2 assets; HMM fit {t_fit:.1f} s (14,000
  bars, 20 EM iterations; the forward/backward passes loop over bars in Python).
- Where the errors are: sideways is most often taken for bull/bear (a calm GARCH phase looks
  like a quiet trend, and a mean-reverting sideways run has short-lived drifts); bull and bear
  are confused with each other until the 96-bar EMA slope turns after a switch (the drift is
  0.15 sigma per bar, so ~50 bars are needed for a 1-sigma read). Volatile (2x volatility) is
  the easiest.
- HMM: in development runs (seeds 0-1), unconstrained Baum-Welch fitted the GARCH volatility
  clusters instead of the regimes (balanced accuracy 0.5-0.65 in-sample). Tying the states to
  the regime structure (bull/bear share volatility with opposite drifts, sideways/volatile
  drift-less, fixed transitions with persistence 0.995, i.e. the generator's expected 200-bar
  runs) makes it usable out of sample and faster to react (shorter lag), but less accurate
  than the rules overall, mostly on bull/bear.
"""
    print(report)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
