"""Sweep files, the results store, resuming, failures and `gsc report` (no Ray needed)."""

import json
import os
import socket
import subprocess
import sys

import click
import pytest

from bridge.common import ConfigError
from gsc_phy.sweep import Runner, load_sweep, parse_sweep, point_id, register_runner
from gsc_phy.sweep.engine import run_sweep
from gsc_phy.sweep.report import write_report
from gsc_phy.sweep.store import ResultStore, read_failures, read_results

CLI = "import sys; from gsc_cli import root as cli; sys.exit(cli.main(sys.argv[1:]))"
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "sweeps")


def gsc(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


TINY = {"fixed": {"uncoded": True, "batch": 16, "max_frames": 16, "snr": "0,3"}}


# ----------------------------------------------------------------------- sweep files
def test_grid_expansion_ranges_unions_and_seeds():
    spec = parse_sweep({
        "runner": "link", "seeds": 2,
        "fixed": {"channel": "awgn", "max-frames": 64},
        "grid": [{"mod": ["qpsk", "16qam"], "speed": {"start": 0, "stop": 20, "step": 10}},
                 {"mod": ["64qam"], "rate": ["1/2"]}],
    })
    assert len(spec.points) == 2 * (2 * 3 + 1)
    assert [p.seed for p in spec.points[:7]] == [0] * 7  # seeds outermost
    assert {p.params["speed"] for p in spec.points if "speed" in p.params} == {0.0, 10.0, 20.0}
    assert spec.points[0].params["max_frames"] == 64  # flag spelling normalised
    assert spec.points[0].config["modulation"] == "qpsk"  # resolved LinkConfig
    assert spec.points[0].config["max_frames"] == 64 and spec.points[0].config["seed"] == 0
    assert set(spec.varied) == {"mod", "speed", "rate"}
    assert spec.resources == {"num_cpus": 1.0, "num_gpus": 0.0} and spec.max_retries == 3


def test_point_identity_is_canonical():
    a = parse_sweep({"fixed": {"max_frames": "64", "mod": "qpsk", "snr": [0, 2.0]}})
    b = parse_sweep({"fixed": {"snr": "0,2", "mod": "qpsk", "max-frames": 64}})
    assert a.points[0].id == b.points[0].id
    assert a.points[0].id == point_id("link", {"max_frames": 64, "mod": "qpsk", "snr": "0,2"}, 0)
    c = parse_sweep({"seeds": [1], "fixed": {"snr": "0,2", "mod": "qpsk", "max_frames": 64}})
    assert c.points[0].id != a.points[0].id
    # duplicates across grid blocks are one point
    d = parse_sweep({"grid": [{"mod": ["qpsk", "16qam"]}, {"mod": ["qpsk"]}]})
    assert len(d.points) == 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"grid": {"modulation_x": ["qpsk"]}}, "unknown parameter 'modulation_x'"),
        ({"grid": {"mod": []}}, "grid.mod: empty list"),
        ({"grid": {"speed": {"start": 10, "stop": 0, "step": 1}}}, "is empty"),
        ({"fixed": {"snr": "10:0:1"}}, "empty"),
        ({"seeds": []}, "seeds is an empty list"),
        ({"seeds": 0}, "empty range of seeds"),
        ({"grid": {"seed": [1, 2]}}, "top-level 'seeds:'"),
        ({"grid": {"mod": ["8qam"]}}, "unknown modulation '8qam'"),
        ({"fixed": {"rate": "3/2"}}, "--rate must be within (0, 1)"),
        ({"grid": {"max_frames": ["abc"]}}, "not a valid integer"),
        ({"grid": {"uncoded": [1]}}, "is a flag"),
        ({"gird": {"mod": ["qpsk"]}}, "unknown key 'gird'"),
        ({"runner": "nope"}, "unknown runner 'nope'"),
        ({"fixed": {"mod": "qpsk"}, "grid": {"mod": ["16qam"]}}, "set in both fixed and grid"),
        ({"resources": {"num_tpus": 1}}, "unknown key 'num_tpus'"),
        ({"grid": {"snr": {"start": 0, "stop": 1e9, "step": 1e-3}}}, "at most"),
        ([1, 2], "a sweep file is a mapping"),
    ],
)
def test_bad_sweep_documents_are_refused(doc, message):
    with pytest.raises(ConfigError, match=None) as e:
        parse_sweep(doc, where="s.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "text",
    ["grid: {nosuch: [1, 2]}\n", "grid: {mod: []}\n", "seeds: []\n", "grid: {mod: [qpsk\n"],
)
def test_cli_refuses_bad_sweep_file_before_running(text, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    res = gsc("sweep", str(f), "--out", str(tmp_path / "out"), "--no-ray", "--quiet")
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gsc: error: bad.yaml: "), res.stderr
    assert not (tmp_path / "out").exists()


def test_cli_unreachable_ray_address_exit_2(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = tmp_path / "s.yaml"
    f.write_text("fixed: {max_frames: 8}\n")
    res = gsc("sweep", str(f), "--out", str(tmp_path / "out"), "--ray-address",
              f"ray://127.0.0.1:{port}", timeout=60)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        f"gsc: error: cannot reach Ray at ray://127.0.0.1:{port}"), res.stderr
    assert not (tmp_path / "out").exists()


def test_examples_parse():
    for name in sorted(os.listdir(EXAMPLES)):
        spec = load_sweep(os.path.join(EXAMPLES, name))
        assert spec.points and spec.runner.name == "link", name


# ----------------------------------------------------------------------- store
def test_store_repairs_a_torn_line_and_writes_each_id_once(tmp_path):
    good = [{"id": "a", "rows": []}, {"id": "b", "rows": []}, {"id": "a", "rows": [1]}]
    (tmp_path / "results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in good) + '{"id": "c", "ro')
    with ResultStore(str(tmp_path)) as store:
        assert store.repaired_bytes == len('{"id": "c", "ro')
        assert store.ids == {"a", "b"}
        assert store.append({"id": "a", "rows": [2]}) is False
        assert store.append({"id": "c", "rows": [3]}) is True
        assert store.append({"id": "c", "rows": [4]}) is False
    recs = read_results(str(tmp_path))
    assert [r["id"] for r in recs] == ["a", "b", "c"]
    assert recs[0]["rows"] == [] and recs[2]["rows"] == [3]  # first line of an id wins
    assert (tmp_path / "results.jsonl").read_text().endswith("\n")


def test_store_has_one_writer(tmp_path):
    with ResultStore(str(tmp_path)):
        with pytest.raises(ConfigError, match="another gsc sweep is writing"):
            ResultStore(str(tmp_path)).open()
    with ResultStore(str(tmp_path)):  # released
        pass


# ----------------------------------------------------------------------- running
def _flaky_runner(fail_marker: str) -> Runner:
    @click.command()
    @click.option("--x", type=int, default=0)
    @click.option("--scale", type=float, default=1.0)
    @click.option("--out", "out_dir", default="x")
    def fake(**_):
        """A stand-in for gsc eval/loopback."""

    def run(options: dict, seed: int) -> list[dict]:
        if options["x"] == 2 and not os.path.exists(fail_marker):
            open(fail_marker, "w").close()
            raise RuntimeError("transient failure")
        return [{"t": t, "y": options["x"] * options["scale"] + seed + t} for t in range(3)]

    return Runner.from_click("flaky", fake, run)


def test_plugged_runner_failure_is_logged_and_retried_on_rerun(tmp_path):
    register_runner(_flaky_runner(str(tmp_path / "failed-once")))
    spec = parse_sweep({"runner": "flaky", "seeds": [0, 1], "fixed": {"scale": 2},
                        "grid": {"x": [1, 2, 3]}})
    assert spec.runner.lookup("--scale").dest == "scale" and spec.runner.lookup("out") is None
    out = str(tmp_path / "store")
    s1 = run_sweep(spec, out, backend="inline", progress=False, log=lambda m: None)
    assert (s1.done, s1.failed, s1.skipped) == (5, 1, 0)
    assert s1.failures[0]["error"] == "RuntimeError: transient failure"
    (fail,) = read_failures(out)
    assert "Traceback" in fail["traceback"] and fail["params"] == {"scale": 2.0, "x": 2}
    mpath = os.path.join(out, "manifest.json")
    m = json.loads(open(mpath).read())
    m["runs"][-1]["status"] = "running"  # as a driver killed mid-way leaves it
    open(mpath, "w").write(json.dumps(m))
    s2 = run_sweep(spec, out, backend="inline", progress=False, log=lambda m: None)
    assert (s2.done, s2.failed, s2.skipped) == (1, 0, 5)
    recs = read_results(out)
    assert len(recs) == 6 and len({r["id"] for r in recs}) == 6
    manifest = json.loads(open(os.path.join(out, "manifest.json")).read())
    assert [r["status"] for r in manifest["runs"]] == ["killed", "complete"]
    assert manifest["runner"] == "flaky" and len(manifest["points"]) == 6
    assert manifest["versions"]["numpy"]
    # a report for a runner without a ReportSpec: inferred axes
    path = write_report(out)
    assert os.path.exists(path) and os.path.exists(os.path.join(out, "report_y.png"))
    # another runner's sweep cannot be mixed into this store
    with pytest.raises(ConfigError, match="holds a sweep of runner 'flaky'"):
        run_sweep(parse_sweep(TINY), out, backend="inline", progress=False)


def test_link_sweep_resumes_extends_and_reports(tmp_path):
    out = str(tmp_path / "store")
    spec = parse_sweep(TINY | {"name": "tiny", "grid": {"mod": ["qpsk"]}, "seeds": [0, 1]})
    s1 = run_sweep(spec, out, backend="inline", progress=False, log=lambda m: None)
    assert (s1.done, s1.skipped, s1.failed) == (2, 0, 0)
    first = open(os.path.join(out, "results.jsonl")).read()
    bigger = parse_sweep(TINY | {"name": "tiny", "grid": {"mod": ["qpsk", "16qam"]},
                                 "seeds": [0, 1]})
    s2 = run_sweep(bigger, out, backend="inline", progress=False, log=lambda m: None)
    assert (s2.done, s2.skipped) == (2, 2)
    assert open(os.path.join(out, "results.jsonl")).read().startswith(first)  # append-only
    recs = read_results(out)
    assert sorted(r["id"] for r in recs) == sorted(p.id for p in bigger.points)
    r0 = recs[0]
    assert r0["config"]["uncoded"] is True and r0["rows"][0]["snr_kind"] == "esno"
    assert [row["snr_db"] for row in r0["rows"]] == [0.0, 3.0] and r0["rows"][0]["frames"] == 16
    # same seed, same point: the same numbers (seeded simulation)
    again = run_sweep(spec, str(tmp_path / "again"), backend="inline", progress=False,
                      log=lambda m: None)
    assert again.done == 2
    assert [r["rows"] for r in read_results(str(tmp_path / "again"))] == \
        [r["rows"] for r in recs[:2]]
    # gsc report: one curve per modulation, errors pooled over the two seeds
    res = gsc("report", out, "--out", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    rep = tmp_path / "rep"
    for name in ("report.html", "report_ber.png", "report_bler.png", "summary.csv"):
        assert (rep / name).stat().st_size > 100, name
    lines = (rep / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("mod,snr_db,ber,bler,seeds,frames")
    assert len(lines) == 1 + 2 * 2 and lines[1].split(",")[4] == "2"
    qpsk0 = [r for r in recs if r["params"]["mod"] == "qpsk"]
    pooled = sum(r["rows"][0]["bit_errors"] for r in qpsk0) / sum(r["rows"][0]["bits"]
                                                                  for r in qpsk0)
    assert float(lines[1].split(",")[2]) == pytest.approx(pooled)
    html = (rep / "report.html").read_text()
    assert "mod=16qam" in html and "Es/N0" in html


def test_cli_report_of_a_non_store_is_one_line(tmp_path):
    res = gsc("report", str(tmp_path))
    assert res.returncode == 2 and res.stderr.startswith("gsc: error: ")
    assert len(res.stderr.strip().splitlines()) == 1


def test_report_curves_join_points_along_x_and_pool_seeds():
    from gsc_phy.sweep.report import build_curves, varied_params
    from gsc_phy.sweep.runners import get_runner

    def rec(mod, snr, seed, errors):
        row = {"snr_db": float(snr), "ber": errors / 100, "bler": 0.0, "bits": 100,
               "bit_errors": errors, "blocks": 1, "block_errors": 0, "frames": 1}
        return {"id": f"{mod}{snr}{seed}", "params": {"mod": mod, "snr": str(snr)},
                "seed": seed, "rows": [row]}

    records = [rec(m, s, seed, e) for m, base in (("qpsk", 10), ("16qam", 40))
               for s in (0, 5) for seed, e in ((0, base - s), (1, base + 2 - s))]
    spec = get_runner("link").report
    varied = varied_params(records)
    assert varied == ["mod", "snr"]
    curves = build_curves(records, spec, varied)
    assert [c.label for c in curves] == ["mod=qpsk", "mod=16qam"]  # one curve per mod
    assert curves[0].xs == [0.0, 5.0] and curves[0].seeds == [2, 2]
    assert curves[0].ys["ber"] == pytest.approx([(10 + 12) / 200, (5 + 7) / 200])  # pooled
    assert curves[1].sums["bit_errors"] == [82, 72]
