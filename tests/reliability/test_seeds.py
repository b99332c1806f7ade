"""A multi-seed experiment stopped part-way resumes its unfinished seeds and keeps the rest;
with W&B, its seeds share one group. Each trains an experiment of its own: slow."""

import json
import shutil

import pytest

from tests.e2e.conftest import run_train

pytestmark = pytest.mark.slow
FAST = ("debug=fast", "agent.total_timesteps=1024", "env.num_envs=8")


def test_a_resumed_experiment_keeps_finished_seeds_and_resumes_the_rest(tmp_path):
    out = tmp_path / "exp"
    run_train(out, *FAST, "seeds=[3,5]", timeout=600)
    stopped = tmp_path / "stopped"
    shutil.copytree(out, stopped)
    runs = {"3": str(stopped / "seed_3"), "5": str(stopped / "seed_5")}
    (stopped / "seeds.json").write_text(json.dumps({"seeds": [3, 5], "runs": runs}))
    five = stopped / "seed_5" / "summary.json"  # seed 5 as a run stopped by a signal
    five.write_text(json.dumps({**json.loads(five.read_text()), "status": "interrupted"}))
    again = tmp_path / "again"
    proc = run_train(again, *FAST, "seeds=[3,5,7]", f"ckpt_path={stopped}")
    runs = json.loads((again / "seeds.json").read_text())["runs"]
    assert runs["3"] == str((stopped / "seed_3").resolve())  # finished: kept, not retrained
    assert runs["5"] == str((again / "seed_5").resolve())  # resumed from its last.ckpt
    assert runs["7"] == str((again / "seed_7").resolve())  # new: trained
    assert "resuming" in proc.stdout + proc.stderr
    summary = json.loads((again / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["seeds"] == [3, 5, 7]
    resumed = json.loads((again / "seed_5" / "summary.json").read_text())
    original = json.loads((out / "seed_5" / "summary.json").read_text())
    assert resumed["val"] == original["val"]  # the same policy: its run had ended
    proc = run_train(tmp_path / "fewer", *FAST, "seeds=[3]", f"ckpt_path={out}", check=False)
    assert proc.returncode != 0 and "resume with seeds=[3, 5]" in proc.stderr


def test_wandb_groups_the_seeds_and_logs_their_mean(tmp_path):
    out = tmp_path / "exp"
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_ERROR_REPORTING": "false",
           "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
           "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache")}  # fmt: skip
    run_train(out, *FAST, "seeds=[1,2]", "logger=wandb", env=env, timeout=600)

    def records(run_dir):
        (run,) = (run_dir / "wandb").glob("offline-run-*")
        return next(run.glob("*.wandb")).read_bytes()

    for s in (1, 2):
        assert out.name.encode() in records(out / f"seed_{s}")  # the group: the experiment
    summary = records(out)
    assert f"{out.name}-seeds".encode() in summary
    assert b"seeds/mean/val/agent/sharpe" in summary and b"seeds/sd/val/agent/sharpe" in summary
