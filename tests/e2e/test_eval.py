"""`python eval.py` on a checkpoint written by `python train.py`: report, plots, baselines,
reproducibility, overrides and an ensemble of two checkpoints."""

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, run_train

STRATEGIES = {"agent", "buy_and_hold", "flat", "random", "ma_crossover", "ma_long_short",
              "momentum", "vol_target"}  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    run_train(out, "debug=fast", "data.source.n_bars=8000")  # a 1,200-bar test split
    return out


def run_eval(out_dir, *overrides, check=True, env=None):
    cmd = [sys.executable, str(ROOT / "eval.py"), f"hydra.run.dir={out_dir}", *overrides]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env or dict(os.environ)
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"eval.py {' '.join(overrides)} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
        )
    return proc


def test_eval_writes_the_report_with_every_baseline_and_repeats_itself(trained, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    proc = run_eval(a, f"ckpt_path={trained}")
    for name in ("report.md", "metrics.json"):
        assert (a / name).is_file()
    plots = sorted(p.name for p in (a / "plots").glob("*.png"))
    assert plots == ["drawdown.png", "equity.png", "positions.png", "returns.png"]
    assert all((a / "plots" / p).stat().st_size > 10_000 for p in plots)
    metrics = json.loads((a / "metrics.json").read_text())
    assert set(metrics["metrics"]) == STRATEGIES
    assert metrics["meta"]["split"] == "test" and metrics["meta"]["in_sample"] is False
    summary = json.loads((trained / "summary.json").read_text())
    # the test split was never scored by training; the backtest covers all of it
    assert "test" not in summary
    assert metrics["metrics"]["agent"]["bars"] == metrics["metrics"]["buy_and_hold"]["bars"]
    report = (a / "report.md").read_text()
    assert "MA crossover" in report and "plots/equity.png" in report
    assert "Sharpe 95% CI" in proc.stdout
    # the first question answered: the agent against the best simple rule, paired
    versus = metrics["meta"]["versus_best_rule"]
    best = max(("buy_and_hold", "ma_crossover", "ma_long_short", "momentum", "vol_target"),
               key=lambda n: metrics["metrics"][n]["sharpe"])  # fmt: skip
    assert versus["rule"] == best
    assert versus["low"] <= versus["difference"] <= versus["high"]
    sharpe = metrics["metrics"]
    assert versus["difference"] == pytest.approx(sharpe["agent"]["sharpe"] - sharpe[best]["sharpe"])
    assert "Does the agent beat the best simple rule" in report
    assert "Does the agent beat the best simple rule" in proc.stdout
    assert "momentum lookback" in proc.stdout + proc.stderr  # chosen on validation, said so
    block = metrics["meta"]["sharpe_ci_blocks"]["agent"]
    assert block["mean_block"] >= 1 and f"{block['mean_block']:.1f} bars" in report
    run_eval(b, f"ckpt_path={trained / 'checkpoints' / 'last.ckpt'}")
    assert json.loads((b / "metrics.json").read_text())["metrics"] == metrics["metrics"]


def test_eval_overrides_split_period_and_costs(trained, tmp_path):
    out = tmp_path / "o"
    run_eval(
        out,
        f"ckpt_path={trained}",
        "split=val",
        "period=[null,'2020-09-20']",
        "+trading.fee_bps=50",
        "baselines=[buy_and_hold]",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"agent", "buy_and_hold"}
    assert metrics["meta"]["costs"]["fee_bps"] == 50
    assert metrics["meta"]["period"][1].startswith("2020-09-20")  # cut at that day


def test_ensemble_of_two_checkpoints(trained, tmp_path):
    best = next((trained / "checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "e"
    paths = f"[{trained / 'checkpoints' / 'last.ckpt'},{best}]"
    run_eval(out, f"ensemble.ckpt_paths={paths}", "ensemble.combine=weighted",
             "baselines=[buy_and_hold]", "n_boot=50")  # fmt: skip
    meta = json.loads((out / "metrics.json").read_text())["meta"]
    assert len(meta["checkpoints"]) == 2 and meta["ensemble"]["combine"] == "weighted"
    assert sum(meta["ensemble"]["weights"]) == pytest.approx(1.0)


def test_wandb_gets_metrics_plots_and_a_per_bar_table(trained, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    out = tmp_path / "w"
    run_eval(out, f"ckpt_path={trained}", "logger=wandb", "baselines=[flat]", env=env)
    (run,) = list((out / "wandb").glob("offline-run-*"))
    images = sorted(
        p.name.split("_")[0] for p in (run / "files" / "media" / "images").rglob("*.png")
    )
    assert len(images) == 4
    assert list((run / "files" / "media" / "table").rglob("*.table.json"))
