"""Figures of an evaluated split (equity, drawdown, positions, returns), written as PNG files.

Built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot: no display, no global
backend switch, safe to call from a training process or a thread.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from adan.data.regimes import REGIME_NAMES
from adan.evaluation.baselines import LABELS
from adan.evaluation.records import BacktestRecord, EvaluationResult

AGENT = "agent"
BUY_AND_HOLD = "buy_and_hold"
DPI = 120
MAX_ASSET_PANELS = 4

_PRETTY = LABELS
_COLOURS = {
    "agent": "tab:blue",
    "buy_and_hold": "dimgray",
    "flat": "black",
    "random": "tab:orange",
    "ma_crossover": "tab:green",
}
_CYCLE = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:red")
REGIME_COLOURS = {
    "bull": "#2ca02c",
    "bear": "#d62728",
    "sideways": "#8c8c8c",
    "volatile": "#9467bd",
}


# ---------------------------------------------------------------------------------------------
# shared helpers (also used by the report)


def strategy_order(result: EvaluationResult) -> list[str]:
    """Record / metric names, agent first, then the baselines in their given order."""
    names = list(dict.fromkeys([*result.records, *result.metrics]))
    return sorted(names, key=lambda n: n != AGENT)


def label(result: EvaluationResult, name: str) -> str:
    """Display name: ``result.meta["labels"][name]`` if given, else a prettified key."""
    labels = result.meta.get("labels") or {}
    if name in labels:
        return str(labels[name])
    return _PRETTY.get(name, name.replace("_", " "))


def _colour(result: EvaluationResult, name: str) -> str:
    if name in _COLOURS:
        return _COLOURS[name]
    others = [n for n in strategy_order(result) if n not in _COLOURS]
    return _CYCLE[others.index(name) % len(_CYCLE)] if name in others else _CYCLE[0]


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("date")
    ax.grid(True, alpha=0.3)


def _title(result: EvaluationResult, what: str) -> str:
    period = result.meta.get("period")
    span = f", {period[0]} to {period[1]}" if period and len(period) == 2 else ""
    return f"{what}: {result.split} split{span}"


def _relative(record: BacktestRecord) -> np.ndarray:
    """Equity / initial cash, [n+1, R]."""
    return np.asarray(record.equity, dtype=np.float64) / float(record.initial_cash)


def _drawdown(curve: np.ndarray) -> np.ndarray:
    """Peak-to-here fall of a 1-D curve, as a positive fraction."""
    peak = np.fmax.accumulate(curve)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - curve / peak


def _bar_returns(record: BacktestRecord) -> np.ndarray:
    """Per-bar simple returns of every run, flattened, finite only."""
    eq = np.asarray(record.equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = (eq[1:] / eq[:-1] - 1.0).ravel()
    return rets[np.isfinite(rets)]


def regime_name(value) -> str:
    """``REGIME_NAMES[value]`` for an integer code, the value itself for a string label."""
    if isinstance(value, str | np.str_):
        return str(value)
    code = int(value)
    return REGIME_NAMES[code] if 0 <= code < len(REGIME_NAMES) else f"regime {code}"


# ---------------------------------------------------------------------------------------------
# figures


def plot_equity(result: EvaluationResult, path: Path) -> Path:
    """Equity / initial cash of the agent and every baseline; multi-run baselines as the mean
    over runs with a shaded min-max band. Log scale when the curves span more than 4x."""
    fig = _new_figure(11, 5.5)
    ax = fig.add_subplot()
    lo, hi = np.inf, -np.inf
    for name in strategy_order(result):
        record = result.records.get(name)
        if record is None:
            continue
        rel = _relative(record)
        colour = _colour(result, name)
        is_agent = name == AGENT
        if record.runs > 1:
            mean = np.nanmean(rel, axis=1)
            lo_band, hi_band = np.nanmin(rel, axis=1), np.nanmax(rel, axis=1)
            ax.fill_between(
                record.timestamps, lo_band, hi_band, color=colour, alpha=0.18, linewidth=0
            )
            text = f"{label(result, name)} (mean, min-max band over {record.runs} runs)"
            ax.plot(record.timestamps, mean, color=colour, lw=1.2, label=text)
            curves = (lo_band, hi_band)
        else:
            ax.plot(
                record.timestamps,
                rel[:, 0],
                color=colour,
                lw=2.0 if is_agent else 1.2,
                alpha=1.0 if is_agent else 0.85,
                zorder=5 if is_agent else 3,
                label=label(result, name),
                linestyle=":" if name == "flat" else "-",
            )
            curves = (rel[:, 0],)
        for c in curves:
            finite = c[np.isfinite(c)]
            if finite.size:
                lo, hi = min(lo, finite.min()), max(hi, finite.max())
    ax.axhline(1.0, color="black", lw=0.8, alpha=0.5)
    log = np.isfinite(lo) and lo > 0 and hi / lo > 4.0
    if log:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain if hi / lo < 20.0 else NullFormatter())
    ax.set_ylabel("equity / initial cash (x)" + (", log scale" if log else ""))
    ax.set_title(_title(result, "Equity, costs included"))
    _date_axis(ax)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    return _save(fig, path)


def plot_drawdown(result: EvaluationResult, path: Path) -> Path:
    """Drawdown from the running peak (%) of the agent, with buy & hold lighter behind it."""
    fig = _new_figure(11, 4.5)
    ax = fig.add_subplot()
    worst = 0.0
    for name in (BUY_AND_HOLD, AGENT):
        record = result.records.get(name)
        if record is None:
            continue
        dd = -100.0 * _drawdown(np.nanmean(_relative(record), axis=1))
        colour = _colour(result, name)
        if name == AGENT:
            ax.fill_between(record.timestamps, dd, 0.0, color=colour, alpha=0.25, linewidth=0)
            ax.plot(record.timestamps, dd, color=colour, lw=1.5, label=label(result, name))
        else:
            ax.plot(
                record.timestamps, dd, color=colour, lw=1.0, alpha=0.6, label=label(result, name)
            )
        if np.any(np.isfinite(dd)):
            k = int(np.nanargmin(dd))
            worst = min(worst, dd[k])
            ax.annotate(
                f"max {dd[k]:.1f}%",
                (record.timestamps[k], dd[k]),
                xytext=(6, -4),
                textcoords="offset points",
                color=colour,
                fontsize=8,
                va="top",
            )
    ax.set_ylim(min(worst * 1.15, -1.0), 0.5)
    ax.set_ylabel("drawdown from peak (%)")
    ax.set_title(_title(result, "Drawdown"))
    _date_axis(ax)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="lower left", fontsize=9, framealpha=0.9)
    return _save(fig, path)


def _shade_regimes(ax, timestamps: np.ndarray, regimes: np.ndarray) -> list[str]:
    """Background bands per contiguous regime run, one collection per regime; the names seen."""
    x = mdates.date2num(timestamps)
    regimes = np.asarray(regimes)
    starts = np.concatenate([[0], np.flatnonzero(regimes[1:] != regimes[:-1]) + 1])
    stops = np.concatenate([starts[1:], [len(regimes) - 1]])
    spans: dict[str, list[tuple[float, float]]] = {}
    for s, e in zip(starts, stops, strict=True):
        spans.setdefault(regime_name(regimes[s]), []).append((x[s], x[e] - x[s]))
    for name, ranges in spans.items():
        ax.broken_barh(
            ranges,
            (0.0, 1.0),
            transform=ax.get_xaxis_transform(),
            facecolors=REGIME_COLOURS.get(name, "#bcbd22"),
            alpha=0.14,
            linewidth=0,
            zorder=0,
        )
    return list(spans)


def plot_positions(result: EvaluationResult, path: Path) -> Path:
    """One panel per asset (at most 4): close price, the agent's position weight on a twin axis
    (step plot: row k, the book held through bar k, spans bar k-1's close to bar k's), and
    the true regime as background shading when the data has it."""
    record = result.records.get(AGENT) or next(iter(result.records.values()))
    assets = list(record.assets)[:MAX_ASSET_PANELS]
    n = max(len(assets), 1)
    fig = _new_figure(11, 2.6 * n + 0.8)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    weights = np.nanmean(np.asarray(record.weights, dtype=np.float64), axis=1)  # [n+1, A]
    wmin = min(0.0, float(np.nanmin(weights))) if weights.size else 0.0
    wmax = max(1.0, float(np.nanmax(weights))) if weights.size else 1.0
    pad = 0.05 * (wmax - wmin)
    seen: list[str] = []
    wlabel = f"{label(result, record.name)} position weight"
    if record.runs > 1:
        wlabel += f" (mean of {record.runs} runs)"
    top = None  # the first panel's twin axis: drawn above the price axis, so it holds legends
    for i, (ax, asset) in enumerate(zip(axes, assets, strict=False)):
        if record.regimes is not None:
            names = _shade_regimes(ax, record.timestamps, record.regimes)
            seen += [r for r in names if r not in seen]
        price = ax.plot(record.timestamps, record.close[:, i], color="black", lw=1.0, label="close")
        ax.set_ylabel(f"{asset} close price")
        ax.set_title(asset, loc="left", fontsize=10)
        _date_axis(ax)
        twin = ax.twinx()
        colour = _colour(result, record.name)
        pos = twin.step(
            record.timestamps, weights[:, i], where="pre", color=colour, lw=1.1, label=wlabel
        )
        twin.axhline(0.0, color=colour, lw=0.6, alpha=0.4)
        twin.set_ylim(wmin - pad, wmax + pad)
        twin.set_ylabel("weight (position / equity)")
        if top is None:
            top = twin
            twin.legend(
                handles=[*price, *pos],
                loc="lower center",
                bbox_to_anchor=(0.42, 1.0),
                ncol=2,
                fontsize=8,
                frameon=False,
            )
    for ax in axes[:-1]:
        ax.set_xlabel("")
    title = _title(result, "Prices and positions")
    if len(record.assets) > len(assets):
        title += f" (first {len(assets)} of {len(record.assets)} assets)"
    fig.suptitle(title)
    if seen and top is not None:
        order = [r for r in REGIME_NAMES if r in seen] + [r for r in seen if r not in REGIME_NAMES]
        handles = [
            Patch(facecolor=REGIME_COLOURS.get(r, "#bcbd22"), alpha=0.35, label=r) for r in order
        ]
        top.add_artist(top.get_legend())
        top.legend(
            handles=handles,
            title="true regime",
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=8,
            title_fontsize=8,
            ncol=len(handles),
            frameon=False,
        )
    return _save(fig, path)


def plot_returns(result: EvaluationResult, path: Path) -> Path:
    """Histograms of per-bar returns (%) of the agent beside buy & hold, on shared bins, with
    the mean and the 5% value-at-risk (5th percentile) marked."""
    names = [n for n in (AGENT, BUY_AND_HOLD) if n in result.records]
    if not names:
        names = strategy_order(result)[:1]
    rets = {n: 100.0 * _bar_returns(result.records[n]) for n in names}
    pooled = np.concatenate([r for r in rets.values()]) if rets else np.zeros(0)
    lo, hi = (float(pooled.min()), float(pooled.max())) if pooled.size else (-0.1, 0.1)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.1, hi + 0.1
    bins = np.linspace(lo, hi, 81)
    fig = _new_figure(11, 4.5)
    axes = fig.subplots(1, len(names), sharex=True, sharey=True, squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        r = rets[name]
        colour = _colour(result, name)
        ax.hist(r, bins=bins, color=colour, alpha=0.6, label=f"{len(r)} bars")
        if r.size:
            mean, var5 = float(r.mean()), float(np.percentile(r, 5))
            ax.axvline(mean, color="black", lw=1.2, label=f"mean {mean:+.3f}%")
            ax.axvline(var5, color="crimson", lw=1.2, ls="--", label=f"5% VaR {var5:+.3f}%")
        ax.axvline(0.0, color="gray", lw=0.6, alpha=0.6)
        ax.set_title(label(result, name))
        ax.set_xlabel("return per bar (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    axes[0].set_ylabel("number of bars")
    fig.suptitle(_title(result, "Per-bar returns"))
    return _save(fig, path)


PLOTS = {
    "equity": plot_equity,
    "drawdown": plot_drawdown,
    "positions": plot_positions,
    "returns": plot_returns,
}
