"""docs/settings.md is what the schema dataclasses say today, and names every key."""

from adan.tasks import reference
from adan.tasks.registry import SCHEMAS


def test_settings_page_is_current():
    assert reference.DOC.read_text(encoding="utf8") == reference.render(), (
        "docs/settings.md is stale: run `python -m adan.tasks.reference`"
    )


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "settings.md"
    stale.write_text(reference.render().replace("n_minibatches", "n_mini"), encoding="utf8")
    monkeypatch.setattr(reference, "DOC", stale)
    assert reference.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert reference.main([]) == 0  # rewrites it
    assert reference.main(["--check"]) == 0


def test_every_key_of_every_typed_group_is_listed():
    text = reference.render()
    for group, options in SCHEMAS.items():
        for kind in options.values():
            for key, *_ in reference.rows(kind, f"{group}."):
                assert f"| `{key}` |" in text, key
    # keys the hand-written reference used to miss: regime thresholds, behaviour-engine bounds
    for key in ("data.regime.volatile_threshold", "trading.dbe.drawdown_ref"):
        assert f"| `{key}` |" in text


def test_a_field_comment_becomes_its_meaning():
    rows = {k: m for k, _, _, m in reference.rows(SCHEMAS["agent"]["ppo"], "agent.")}
    assert rows["agent.total_timesteps"] == "per process under trainer=ddp"
