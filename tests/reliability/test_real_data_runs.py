"""`python train.py` on real files: the shipped Binance sample and the dirty public dump (the
two trainings in .ci/run's slow stage; the strict-mode refusal in the default suite)."""

import json

import numpy as np
import pytest

from adan.evaluation.checkpoint import market_from_checkpoint, read_checkpoint
from tests.e2e.conftest import run_train

DUMP = "tests/data/files/Binance_BTCUSDT_1h.csv"


@pytest.mark.slow  # a training on real files: .ci/run's slow stage
def test_binance_sample_trains_and_checkpoints_its_data_contract(tmp_path):
    out = tmp_path / "run"
    run_train(out, "data=binance_sample", "debug=fast", f"paths.cache_dir={tmp_path / 'cache'}")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["val"]) == {"agent", "buy_and_hold"}
    history = json.loads((out / "cleaning_report.json").read_text())
    assert [d["rule"] for d in history["defects"]] == ["gap", "gap"]  # one 2 h gap per asset
    assert json.loads((out / "cleaning_report_test.json").read_text())["defects"] == []
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")  # the loader eval.py uses
    data = ckpt["adan_data"]
    assert data["assets"] == ["BTCUSDT", "XRPUSDT"]
    assert data["feature_names"][-1] == "filled" and set(data["timeframes"]) == {"4h", "1d"}
    assert len(data["scaler"]["mean"]) == 2  # per asset
    assert ckpt["adan_config"]["data"]["test_path"][0].endswith("BTCUSDT_1h_2025.csv")
    # CustomCNN has a branch per timeframe: its first conv sees assets x that timeframe's features
    for rule, n_features in (("4h", 6), ("1d", 4)):
        key = f"policy.pi_extractor.timeframe_blocks.market_{rule}.0.0.weight"
        assert ckpt["state_dict"][key].shape[1] == 2 * n_features

    # the checkpoint alone rebuilds the market with the training normalisation
    market = market_from_checkpoint(out / "checkpoints" / "last.ckpt")
    assert market["test"].meta["scaler"] == data["scaler"]
    assert market["test"].meta["timeframes"]["1d"]["scaler"] == data["timeframes"]["1d"]["scaler"]
    assert str(market["test"].timestamps[0]).startswith("2025-03-1")  # after the 1d warm-up
    assert np.isfinite(market["test"].features).all()


@pytest.mark.slow  # a training on real files: .ci/run's slow stage
def test_dirty_dump_trains_and_its_report_lists_the_defects(tmp_path):
    out = tmp_path / "run"
    run_train(
        out, "data=csv", f"data.path={DUMP}", "debug=fast", f"paths.cache_dir={tmp_path / 'c'}"
    )
    assert (out / "summary.json").exists()
    report = json.loads((out / "cleaning_report.json").read_text())
    rules = {d["rule"] for d in report["defects"]}
    assert {
        "mixed_epoch_units",
        "unsorted_rows",
        "duplicate_timestamp",
        "stale_bars",
        "outlier_price",
        "gap",
    } <= rules


def test_strict_mode_refuses_the_dump_naming_file_and_row(tmp_path):
    proc = run_train(
        tmp_path / "run", "data=csv", f"data.path={DUMP}", "data.cleaning.mode=strict", check=False
    )
    assert proc.returncode != 0
    assert "Binance_BTCUSDT_1h.csv: row 2: mixed_epoch_units" in proc.stderr
    assert "data.cleaning.mode=repair" in proc.stderr
