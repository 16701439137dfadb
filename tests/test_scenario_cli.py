"""`gsc scenario`: the road scenario end to end on tiny inputs, and bad input."""

import json

import click
import numpy as np
import pytest
from PIL import Image

from bridge.common import ConfigError
from gsc_cli.root import main
from gsc_semantic.scenarios.cli import _load
from gsc_semantic.scenarios.common import parse_link


@pytest.fixture(scope="module")
def tiny_checkpoints(road_tiny_checkpoints):
    return road_tiny_checkpoints


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gsc: error: "), err
    return lines[0]


def test_parse_link():
    assert parse_link("sim").kind == "sim" and parse_link("loopback").kind == "loopback"
    spec = parse_link("sigmf:/data/rec.sigmf-meta")
    assert (spec.kind, spec.path, str(spec)) == ("sigmf", "/data/rec.sigmf-meta",
                                                 "sigmf:/data/rec.sigmf-meta")
    for bad in ("", "sigmf:", "usrp", "SIM"):
        with pytest.raises(ConfigError):
            parse_link(bad)


@pytest.mark.parametrize("args,words", [
    (["road", "--link", "radio"], "--link"),
    (["road", "--snr", "10:0:1"], "empty"),
    (["road", "--snr", "loud"], "--snr"),
    (["road", "--rho", "0"], "rho"),
    (["road", "--scenes", "0"], "--scenes"),
    (["road", "--trials", "0"], "--trials"),
    (["meeting", "--trials", "0"], "--trials"),
    (["meeting", "--link", "sigmf:"], "sigmf"),
    (["road", "--no-such-flag"], "no-such-flag"),
])
def test_bad_input_one_line_exit_2(args, words, tmp_path, capsys):
    assert main(["scenario", *args, "--out", str(tmp_path)]) == 2
    assert words in _one_error_line(capsys)


def test_missing_scenario_module_is_one_clear_error():
    with pytest.raises(click.ClickException, match="not available"):
        _load("gsc_semantic.scenarios.no_such_scenario", "run", "test")


def test_road_needs_simulated_link_and_readable_images(tiny_checkpoints, tmp_path, capsys):
    out = str(tmp_path / "out")
    (tmp_path / "afile").write_text("not a folder")
    assert main(["scenario", "road", "--link", f"sigmf:{tmp_path / 'afile'}", "--out",
                 out]) == 2
    assert "not a folder" in _one_error_line(capsys)
    assert main(["scenario", "road", "--rerecord", "--out", out]) == 2
    assert "--rerecord applies to --link sigmf" in _one_error_line(capsys)
    assert main(["scenario", "road", "--link", "loopback", "--channel", "rayleigh",
                 "--out", out]) == 2
    assert "streaming loopback emulates" in _one_error_line(capsys)
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "ok.png")
    (folder / "bad.png").write_bytes(b"\x89PNG broken")
    assert main(["scenario", "road", "--images", str(folder), "--checkpoints",
                 tiny_checkpoints, "--out", out]) == 2
    assert "bad.png" in _one_error_line(capsys)
    assert main(["scenario", "road", "--checkpoints", str(tmp_path / "none"),
                 "--out", out]) == 2
    assert "--train" in _one_error_line(capsys)


def test_road_cli_writes_tables_figures_report(tiny_checkpoints, tmp_path):
    out = tmp_path / "road"
    assert main(["scenario", "road", "--scenes", "2", "--snr", "-10,30", "--rho", "1/6",
                 "--checkpoints", tiny_checkpoints, "--out", str(out)]) == 0
    for name in ("road.json", "road.md", "road.gif", "road_vs_snr.png", "report.html",
                 "grid_snr-10.png", "grid_snr30.png"):
        assert (out / name).stat().st_size > 100, name
    doc = json.loads((out / "road.json").read_text())
    assert doc["snr_kind"] == "esno" and doc["seed"] == 0 and doc["versions"]["torch"]
    rows = {(r["method"], r["snr_db"]): r for r in doc["rows"]}
    assert set(rows) == {(m, s) for m in ("gsc-uep", "gsc-single", "jpeg", "webp", "webp-ra")
                         for s in (-10.0, 30.0)}
    budget = 3 * 64 * 64 / 6
    for r in doc["rows"]:
        assert r["channel_uses"] <= budget + 1e-6 and r["rho"] <= 1 / 6 + 1e-9
        assert 0 <= r["miou"] <= 1 and 0 <= r["f1"] <= 1
    assert rows[("gsc-uep", 30.0)]["layers_received"] == 4
    assert rows[("gsc-uep", -10.0)]["layers_received"] == 0
    assert rows[("jpeg", 30.0)]["delivered"] == 1 and rows[("jpeg", -10.0)]["delivered"] == 0
    assert [r["method"] for r in doc["references"]][0] == "original"
    assert "| gsc-uep |" in (out / "road.md").read_text()
    assert "road_vs_snr.png" in (out / "report.html").read_text()


def test_road_trials_give_means_with_confidence_intervals(tiny_checkpoints, tmp_path):
    out = tmp_path / "road3"
    assert main(["scenario", "road", "--scenes", "2", "--snr", "0", "--trials", "3",
                 "--checkpoints", tiny_checkpoints, "--out", str(out)]) == 0
    doc = json.loads((out / "road.json").read_text())
    assert doc["config"]["trials"] == 3
    for r in doc["rows"]:
        assert r["trials"] == 3 and r["miou_ci95"] is not None and r["miou_ci95"] >= 0
        assert 0 <= r["delivered"] <= 1
    assert "miou_ci95" in (out / "road.md").read_text()
