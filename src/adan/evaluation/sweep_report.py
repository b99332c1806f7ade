"""The report of a hyperparameter sweep: what was tried, what won, how much of the win the
choice itself explains, and the one command that scores the winner on the test split.

``write_sweep_report`` reads an Optuna study (trial states, values, parameters and the user
attributes the sweeper sets: ``run_dir``, ``overrides``, ``seed``, ``pruned_at``) and each
completed trial's validation returns (``<run_dir>/val_returns.csv``, or the bar-by-bar mean of
``<run_dir>/seed_<s>/val_returns.csv`` for a multi-seed trial). It writes ``sweep_report.md``,
``sweep_report.json`` and three figures (optimisation history, parameter importances,
parallel coordinates) into the sweep directory. The Deflated Sharpe
Ratio and the Probability of Backtest Overfitting (:mod:`adan.evaluation.selection`) are
computed on one matrix: the trials' series on the bars they all share.

A figure or statistic that cannot be computed is skipped with its reason in the report; a
sweep that ran for hours is never left without one because a trial's files are missing.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from adan.config.secrets import mask_password
from adan.evaluation.report import json_safe
from adan.evaluation.selection import (
    BacktestOverfitting,
    DeflatedSharpe,
    deflated_sharpe_ratio,
    feasible_n_splits,
    per_bar_sharpe,
    probability_of_backtest_overfitting,
)
from adan.files import atomic_write_text

VAL_RETURNS = "val_returns.csv"
REPORT = "sweep_report.md"
SUMMARY = "sweep_report.json"
PLOTS = {
    "optimization_history": "Optimisation history",
    "param_importances": "Parameter importances",
    "parallel_coordinate": "Parallel coordinates",
}
DPI = 120


# ---------------------------------------------------------------------------------------------
# the study


def storage_text(study: optuna.Study) -> str:
    """The kind of storage the study lives in, with its URL (password masked) if it has one."""
    storage = getattr(study, "_storage", None)
    storage = getattr(storage, "_backend", storage)  # _CachedStorage wraps an RDBStorage
    if isinstance(storage, optuna.storages.InMemoryStorage):
        return "in memory (nothing persisted)"
    url = getattr(storage, "url", None) or getattr(storage, "_url", None)
    if not isinstance(url, str):
        return type(storage).__name__
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    kinds = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL", "redis": "Redis"}
    return f"{kinds.get(scheme, scheme)} `{mask_password(url)}`"


def _direction(study: optuna.Study) -> str:
    directions = study.directions
    if len(directions) != 1:
        raise ValueError(
            f"write_sweep_report handles single-objective studies; study {study.study_name!r} "
            f"has {len(directions)} objectives"
        )
    return "maximize" if directions[0] == optuna.study.StudyDirection.MAXIMIZE else "minimize"


def _ranked(trials: list[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Completed trials with a finite value, best first (ties: lower trial number first)."""
    done = [t for t in trials if t.value is not None and np.isfinite(t.value)]
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(done, key=lambda t: (sign * float(t.value), t.number))


# ---------------------------------------------------------------------------------------------
# validation returns


def _read_returns(path: Path) -> pd.Series:
    """One ``val_returns.csv`` as a Series of per-bar returns indexed by ``time``."""
    frame = pd.read_csv(path)
    missing = [c for c in ("time", "agent") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing} (has {list(frame.columns)})")
    if frame["time"].duplicated().any():
        raise ValueError(
            f"{path} repeats times, e.g. {frame['time'][frame['time'].duplicated()].iloc[0]}"
        )
    values = pd.to_numeric(frame["agent"], errors="coerce")
    if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
        raise ValueError(f"{path} has non-numeric or non-finite returns in column 'agent'")
    return pd.Series(
        values.to_numpy(dtype=np.float64), index=frame["time"].to_numpy(), name="agent"
    )


def trial_returns(run_dir: Path) -> pd.Series:
    """A trial's validation returns: ``run_dir/val_returns.csv``, else the mean over seeds of
    ``run_dir/seed_<s>/val_returns.csv`` on the times every seed has. Raises
    ``FileNotFoundError`` / ``ValueError`` naming the file when there is none or it is bad."""
    run_dir = Path(run_dir)
    own = run_dir / VAL_RETURNS
    if own.is_file():
        return _read_returns(own)
    seeds = sorted(
        (p for p in run_dir.glob(f"seed_*/{VAL_RETURNS}") if p.parent.name[5:].isdigit()),
        key=lambda p: int(p.parent.name[5:]),
    )
    if not seeds:
        raise FileNotFoundError(f"no {VAL_RETURNS} in {run_dir} nor in its seed_<s>/ directories")
    per_seed = pd.concat([_read_returns(p) for p in seeds], axis=1, join="inner")
    if per_seed.empty:
        raise ValueError(f"the seeds under {run_dir} share no times in their {VAL_RETURNS}")
    return per_seed.mean(axis=1).rename("agent")


def returns_matrix(trials: list[FrozenTrial]) -> tuple[pd.DataFrame, dict[int, str]]:
    """The validation returns of ``trials`` as a frame [common times, trial number] (sorted by
    time), and why each trial left out has no column."""
    series, skipped = {}, {}
    for t in trials:
        run_dir = t.user_attrs.get("run_dir")
        if not run_dir:
            skipped[t.number] = "no run_dir user attribute"
            continue
        try:
            series[t.number] = trial_returns(Path(run_dir))
        except (OSError, ValueError, pd.errors.ParserError) as err:
            skipped[t.number] = str(err)
    if not series:
        return pd.DataFrame(), skipped
    return _in_time_order(pd.concat(series, axis=1, join="inner")), skipped


def _in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` sorted by its index read as dates (as given if they are not dates): CSCV's
    blocks must be contiguous in time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas: could not infer a date format
        try:
            keys = np.asarray(pd.to_datetime(frame.index))
        except (ValueError, TypeError):
            keys = np.asarray(frame.index)
    with contextlib.suppress(TypeError):  # keys that do not compare: keep the files' order
        frame = frame.iloc[np.argsort(keys, kind="stable")]
    return frame


# ---------------------------------------------------------------------------------------------
# statistics


def _dsr(matrix: pd.DataFrame, best: FrozenTrial | None) -> tuple[DeflatedSharpe | None, str]:
    if best is None:
        return None, "no completed trial"
    if best.number not in matrix.columns:
        return None, f"the best trial ({best.number}) has no validation return series"
    if matrix.shape[1] < 2:
        return None, "fewer than 2 completed trials have a validation return series"
    try:
        sharpes = per_bar_sharpe(matrix.to_numpy())
        return deflated_sharpe_ratio(matrix[best.number].to_numpy(), sharpes), ""
    except ValueError as err:
        return None, str(err)


def _pbo(matrix: pd.DataFrame, n_splits: int) -> tuple[BacktestOverfitting | None, str]:
    if matrix.shape[1] < 2:
        return None, "fewer than 2 completed trials have a validation return series"
    s = feasible_n_splits(len(matrix), n_splits)
    if s == 0:
        return None, f"only {len(matrix)} common bars: CSCV needs at least 4 (2 blocks of 2)"
    try:
        return probability_of_backtest_overfitting(matrix.to_numpy(), n_splits=s), ""
    except ValueError as err:
        return None, str(err)


# ---------------------------------------------------------------------------------------------
# figures
#
# The optimisation history is optuna's (optuna.visualization.matplotlib). Its other two figures
# fail in optuna 2.10.1 with current libraries (the importance plot calls matplotlib.cm.get_cmap,
# removed in matplotlib 3.9; the parallel coordinates call fig.colorbar without an Axes, refused
# since 3.6, and log-scale already log-transformed values), so they are drawn here from optuna's
# numbers, on a matplotlib Figure with the Agg canvas.


def _history(study: optuna.Study, path: Path) -> Path:
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    # a pyplot figure that sets the ggplot style globally: keep the style local, close it
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = ovm.plot_optimization_history(study)
        try:
            ax.figure.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
        finally:
            plt.close(ax.figure)
    return path


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """Each parameter's importance to the objective over the completed trials, and how it was
    measured: fANOVA, or a random forest's mean decrease in impurity when fANOVA fails (optuna
    2.10.1's fANOVA fails with scikit-learn >= 1.3)."""
    from optuna.importance import (
        FanovaImportanceEvaluator,
        MeanDecreaseImpurityImportanceEvaluator,
        get_param_importances,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
            return dict(values), "fANOVA"
        except Exception as err:  # noqa: BLE001 - the fallback below says why
            why = f"{type(err).__name__}: {err}".split("\n")[0][:160]
        values = get_param_importances(
            study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0)
        )
    return dict(values), f"mean decrease in impurity of a random forest (fANOVA failed: {why})"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _importances_plot(values: dict[str, float], how: str, path: Path) -> Path:
    names = list(values)[::-1]  # most important on top
    fig = _figure(7.0, 1.2 + 0.45 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    for y, n in enumerate(names):
        ax.text(values[n], y, f" {values[n]:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title("Parameter importances, " + how.split(" (")[0], fontsize=10)
    ax.set_xlim(0, max(values.values()) * 1.15 or 1.0)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
    return path


def _axis(trials: list[FrozenTrial], name: str) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """One parameter's values scaled to [0, 1] (nan where a trial lacks it) and its tick
    labels: every choice of a categorical, else the lowest and highest value tried."""
    dist = next(t.distributions[name] for t in trials if name in t.distributions)
    tried = [name in t.params for t in trials]
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        choices = list(dist.choices)
        span = max(len(choices) - 1, 1)
        x = [
            choices.index(t.params[name]) / span if ok else np.nan
            for t, ok in zip(trials, tried, strict=True)
        ]
        return np.array(x, dtype=float), [(i / span, _cell(c)) for i, c in enumerate(choices)]
    log = isinstance(
        dist,
        optuna.distributions.LogUniformDistribution
        | optuna.distributions.IntLogUniformDistribution,
    ) or bool(getattr(dist, "log", False))
    v = np.array(
        [float(t.params[name]) if ok else np.nan for t, ok in zip(trials, tried, strict=True)]
    )
    x = np.log10(v) if log else v
    lo, hi = np.nanmin(x), np.nanmax(x)
    scaled = (x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)
    ticks = (
        [(0.0, _cell(float(np.nanmin(v)))), (1.0, _cell(float(np.nanmax(v))))]
        if hi > lo
        else [(0.5, _cell(float(np.nanmin(v))))]
    )
    return scaled, ticks


def _parallel_plot(trials: list[FrozenTrial], direction: str, path: Path) -> Path:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    names = sorted({p for t in trials for p in t.params})
    value = np.array([float(t.value) for t in trials])
    vlo, vhi = value.min(), value.max()
    columns = [
        (
            (value - vlo) / (vhi - vlo) if vhi > vlo else np.full_like(value, 0.5),
            [(0.0, _cell(float(vlo))), (1.0, _cell(float(vhi)))],
        )
    ]
    columns += [_axis(trials, n) for n in names]
    labels = ["objective", *names]
    fig = _figure(2.0 + 1.7 * len(labels), 4.5)
    ax = fig.add_subplot()
    cmap = colormaps["viridis" if direction == "maximize" else "viridis_r"]
    norm = Normalize(vlo, vhi if vhi > vlo else vlo + 1.0)
    ys = np.stack([c[0] for c in columns], axis=1)  # [trials, axes]
    for row, v in sorted(
        zip(ys, value, strict=True), key=lambda rv: rv[1] * (1 if direction == "maximize" else -1)
    ):
        ax.plot(range(len(labels)), row, color=cmap(norm(v)), alpha=0.85, lw=1.4)
    for i, (_, ticks) in enumerate(columns):
        ax.axvline(i, color="0.3", lw=0.8)
        for y, text in ticks:
            ax.text(i + 0.03, y, text, fontsize=7, va="center")
    ax.set_xticks(range(len(labels)), labels, rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(labels) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(
        f"Parallel coordinates of {len(trials)} completed trials ({direction})", fontsize=10
    )
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="objective value")
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
    return path


def _plots(
    study: optuna.Study, complete: list[FrozenTrial], direction: str, out: Path
) -> tuple[dict[str, Path | str], str]:
    """Draw each figure to ``out/<key>.png``: {key: its path, or why it was skipped}, and how
    the importances were measured ("" if they were not)."""
    complete = [t for t in complete if t.value is not None and np.isfinite(t.value)]
    if len(complete) < 2:
        return dict.fromkeys(PLOTS, f"{len(complete)} completed trial(s), a figure needs 2"), ""
    names = sorted({p for t in complete for p in t.params})
    result: dict[str, Path | str] = {}
    how = ""
    for key in PLOTS:
        path = out / f"{key}.png"
        try:
            if key == "optimization_history":
                result[key] = _history(study, path)
            elif not names:
                result[key] = "no parameter was searched"
            elif key == "param_importances" and len(names) == 1:
                result[key] = f"a single parameter ({names[0]}) has importance 1 by definition"
            elif key == "param_importances":
                values, how = importances(study)
                result[key] = _importances_plot(values, how, path)
            else:
                result[key] = _parallel_plot(complete, direction, path)
        except Exception as err:  # noqa: BLE001 - a figure never stops the report
            result[key] = f"it could not be drawn ({type(err).__name__}: {err})"
    return result, how


# ---------------------------------------------------------------------------------------------
# Markdown


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif value is None:
        text = "—"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _params(t: FrozenTrial) -> str:
    return "<br>".join(f"{k}={_cell(v)}" for k, v in t.params.items()) or "—"


def _dsr_text(d: DeflatedSharpe, best: FrozenTrial, n_pruned: int) -> list[str]:
    if d.dsr >= 0.95:
        verdict = (
            "At 0.95 or more, the winner's edge is unlikely to be the selection alone (still "
            "on the validation split it was chosen on: the test split decides)."
        )
    elif d.dsr >= 0.5:
        verdict = (
            "Below 0.95, the evidence that the winner beats the best of as many lucky draws is "
            "weak: treat its edge as unconfirmed."
        )
    else:
        verdict = (
            "Below 0.5, the winner does worse than the best of as many trials without an edge "
            "would be expected to: its validation score is most likely the selection, not skill."
        )
    lines = [
        f"**DSR = {d.dsr:.3f}** (trial {best.number}; per-bar Sharpe {d.sr:.4f} over "
        f"T = {d.n_obs} bars, skewness {d.skew:.2f}, kurtosis {d.kurtosis:.2f}; N = {d.n_trials} "
        f"trials whose per-bar Sharpes have variance V = {d.sharpe_variance:.3g}; "
        f"benchmark SR0 = {d.sr0:.4f} per bar).",
        "",
        f"In plain words: even if none of the {d.n_trials} trials had any edge, the best of them "
        f"would be expected to show a per-bar Sharpe of about {d.sr0:.4f} on these bars, by luck "
        "and by the spread of Sharpes the search produced. The DSR is the probability that the "
        "chosen trial's true Sharpe is above that luck benchmark, given how many bars back it "
        f"and how fat-tailed and skewed its returns are. {verdict}",
    ]
    if n_pruned:
        lines[-1] += (
            f" The {n_pruned} pruned trial(s) were tries too but have no full series, so N "
            "understates the search and the DSR is, if anything, optimistic."
        )
    return lines


def _pbo_text(p: BacktestOverfitting, n_splits: int) -> list[str]:
    lines = []
    if p.n_splits != n_splits:
        lines += [
            f"n_splits reduced from {n_splits} to {p.n_splits}: {p.n_bars + p.n_dropped} common "
            f"bars leave at least 2 bars per block only with {p.n_splits} blocks.",
            "",
        ]
    dropped = f", the {p.n_dropped} oldest dropped" if p.n_dropped else ""
    lines += [
        f"**PBO = {p.pbo:.3f}** (CSCV over {p.n_trials} trials, {p.n_bars} common bars{dropped} "
        f"in {p.n_splits} blocks, {p.n_combinations} in-sample/out-of-sample splits; "
        f"probability of an out-of-sample loss {p.prob_oos_loss:.3f}; performance degradation "
        f"slope {p.degradation_slope:.3f}).",
        "",
        "In plain words: the validation bars are cut into blocks and every way of taking half "
        "of them as a selection sample is tried; the trial with the best per-bar Sharpe on "
        "that half is then ranked among all trials on the other half. PBO is the share of "
        f"splits in which that winner ranked at or below the median: {p.pbo:.0%}. Near 0, "
        "picking the best trial carries over to unseen bars; near 0.5 or above, the ranking "
        "does not carry over and picking the winner is no better than picking at random. "
        "A negative degradation slope means the better a trial looked in-sample, the worse "
        "it did out-of-sample.",
    ]
    return lines


def _render(
    study: optuna.Study,
    direction: str,
    counts: dict[str, int],
    ranked: list[FrozenTrial],
    pruned: list[FrozenTrial],
    failed: list[FrozenTrial],
    top_k: int,
    skipped: dict[int, str],
    matrix: pd.DataFrame,
    dsr: tuple[DeflatedSharpe | None, str],
    pbo: tuple[BacktestOverfitting | None, str],
    n_splits: int,
    plots: dict[str, Any],
    how: str,
    command: str | None,
    out: Path,
) -> str:
    best = ranked[0] if ranked else None
    lines = [
        f"# Sweep report: {study.study_name}",
        "",
        f"**storage** {storage_text(study)} · **objective** {direction} · **trials** "
        + ", ".join(f"{n} {state}" for state, n in counts.items()),
        "",
        f"## Top {top_k} completed trials",
        "",
    ]
    if ranked:
        lines += [
            "| rank | trial | value | params | seed | run_dir |",
            "| --: | --: | --: | :-- | --: | :-- |",
        ]
        for i, t in enumerate(ranked[:top_k], 1):
            seed, run_dir = t.user_attrs.get("seed"), t.user_attrs.get("run_dir")
            rd = f"`{_cell(run_dir)}`" if run_dir else "—"
            lines.append(
                f"| {i} | {t.number} | {_cell(float(t.value))} | {_params(t)} | {_cell(seed)} "
                f"| {rd} |"
            )
    else:
        lines.append("No trial completed.")
    lines.append("")
    if pruned:
        lines += ["## Pruned trials", "", "| trial | pruned at iteration | params |"]
        lines.append("| --: | --: | :-- |")
        for t in pruned:
            at = t.user_attrs.get("pruned_at", t.last_step)
            lines.append(f"| {t.number} | {_cell(at)} | {_params(t)} |")
        lines.append("")
    if failed:
        numbers = ", ".join(str(t.number) for t in failed)
        lines += [f"Failed trials: {numbers}.", ""]

    lines += ["## Deflated Sharpe Ratio of the best trial", ""]
    d, why = dsr
    lines += _dsr_text(d, best, len(pruned)) if d and best else [f"Skipped: {why}."]
    lines += ["", "## Probability of Backtest Overfitting", ""]
    p, why = pbo
    lines += _pbo_text(p, n_splits) if p else [f"Skipped: {why}."]
    lines.append("")
    if not matrix.empty:
        lines += [
            f"Both use the validation returns of {matrix.shape[1]} completed trial(s) on the "
            f"{len(matrix)} bars they all share (per-bar, net of costs, not annualised).",
            "",
        ]
    if skipped:
        lines += ["Trials without a validation return series:", ""]
        lines += [f"- trial {n}: {why}" for n, why in sorted(skipped.items())]
        lines.append("")

    lines += ["## Figures", ""]
    for key, title in PLOTS.items():
        value = plots[key]
        if isinstance(value, Path):
            lines += [f"### {title}", ""]
            if key == "param_importances":
                lines += [f"Measured by {how}.", ""]
            lines += [f"![{title}]({value.relative_to(out).as_posix()})", ""]
        else:
            lines += [f"- {title}: skipped, {value}."]
    if lines[-1] != "":
        lines.append("")

    lines += ["## Score the chosen trial on the test split", ""]
    if command:
        lines += [
            "```bash",
            command,
            "```",
            "",
            f"The sweep chose trial {best.number if best else '?'} on the validation split "
            "only: the test split was not touched by the sweep. Run this once, for this trial, "
            "and quote its result; scoring several trials on the test split and keeping the "
            "best would make it one more validation split.",
        ]
    else:
        lines.append("No completed trial: nothing to evaluate.")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------


def write_sweep_report(
    study: optuna.Study,
    sweep_dir: Path,
    *,
    eval_command: str | None = None,
    top_k: int = 5,
    n_splits: int = 16,
) -> Path:
    """Write ``sweep_report.md``, ``sweep_report.json`` and the Optuna figures of ``study``
    into ``sweep_dir``; returns the report's path.

    The best trial is the completed one with the best objective value in the study's
    direction (ties: the lower trial number); its DSR counts N = the completed trials with a
    validation return series. ``eval_command`` replaces the default
    ``python eval.py ckpt_path=<best run_dir>``. A multi-objective study is refused
    (ValueError).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits}")
    out = Path(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    direction = _direction(study)
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    ranked = _ranked(complete, direction)
    best = ranked[0] if ranked else None

    matrix, skipped = returns_matrix(complete)
    dsr = _dsr(matrix, best)
    pbo = _pbo(matrix, n_splits)
    plots, how = _plots(study, complete, direction, out)
    command = eval_command
    if command is None and best is not None:
        run_dir = best.user_attrs.get("run_dir")
        target = shlex.quote(str(run_dir)) if run_dir else f"<run dir of trial {best.number}>"
        command = f"python eval.py ckpt_path={target}"

    text = _render(
        study, direction, counts, ranked, pruned, failed, top_k, skipped, matrix,
        dsr, pbo, n_splits, plots, how, command, out,
    )  # fmt: skip
    report = atomic_write_text(out / REPORT, text)
    summary = {
        "study_name": study.study_name,
        "direction": direction,
        "counts": counts,
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "run_dir": best.user_attrs.get("run_dir"),
        },
        "dsr": dsr[0].as_dict() if dsr[0] else None,
        "dsr_skipped": dsr[1] or None,
        "pbo": pbo[0].as_dict() if pbo[0] else None,
        "pbo_skipped": pbo[1] or None,
        "common_bars": len(matrix),
        "trials_with_returns": [int(c) for c in matrix.columns],
        "plots": {k: (v.name if isinstance(v, Path) else None) for k, v in plots.items()},
        "importances_by": how or None,
        "eval_command": command,
    }
    atomic_write_text(out / SUMMARY, json.dumps(json_safe(summary), indent=2) + "\n")
    return report
