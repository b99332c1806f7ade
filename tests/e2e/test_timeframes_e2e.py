"""`python train.py` with a higher timeframe: the CNN gets a 4h branch and the run completes."""

import json

import torch

from tests.e2e.conftest import run_train


def test_debug_run_with_a_4h_timeframe(tmp_path):
    out = tmp_path / "run"
    run_train(
        out, "debug=fast", "data.timeframes=[{rule: 4h, features: [log_return, rsi_14], window: 8}]"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["val"]) == {"agent", "buy_and_hold"}
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    weight = ckpt["state_dict"]["policy.pi_extractor.timeframe_blocks.market_4h.0.0.weight"]
    assert weight.shape[1] == 2 * 2  # assets x 4h features
