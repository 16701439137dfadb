"""GRC blocks installed the out-of-tree way (flowgraphs/install_blocks.py, run by make setup):
``grcc`` compiles every ``.grc`` in a clean shell (no PYTHONPATH, no GRC_BLOCKS_PATH, outside
the checkout) and the generated flowgraphs' block imports work.

The install goes to a temporary HOME (``--user``: ``~/.grc_gnuradio/gsc`` and the user
site-packages), so the test leaves the machine as it was.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.radio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALLER = os.path.join(ROOT, "flowgraphs", "install_blocks.py")
GRC_FILES = sorted(glob.glob(os.path.join(ROOT, "flowgraphs", "*.grc"))
                   + glob.glob(os.path.join(ROOT, "flowgraphs", "device", "*.grc")))


def options_id(grc: str) -> str:
    """The ``options`` block's id of a ``.grc`` file: the name grcc gives its output."""
    yaml = pytest.importorskip("yaml")
    with open(grc, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    return doc["options"]["parameters"]["id"]


def clean_env(home: str) -> dict[str, str]:
    """What a fresh login shell has: PATH and HOME, nothing of gsc's."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "LANG": "C.UTF-8"}


def run(args, home, cwd, timeout=600):
    return subprocess.run(args, env=clean_env(home), cwd=str(cwd), capture_output=True,
                          text=True, timeout=timeout)


def test_installer_links_the_one_tree_and_uninstalls(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    res = run([sys.executable, INSTALLER, "--user", "--check"], home, tmp_path)
    assert res.returncode == 1  # nothing installed in a fresh HOME
    res = run([sys.executable, INSTALLER, "--user"], home, tmp_path)
    assert res.returncode == 0, res.stderr
    target = home / ".grc_gnuradio" / "gsc"
    links = sorted(os.listdir(target))
    yml = sorted(glob.glob(os.path.join(ROOT, "flowgraphs", "grc", "**", "*.yml"),
                           recursive=True))
    assert len(links) == len(yml) and "gsc.tree.yml" in links
    assert "device__gsc_sigmf_source.block.yml" in links
    assert all(os.path.realpath(target / n) in map(os.path.realpath, yml) for n in links)
    assert run([sys.executable, INSTALLER, "--user", "--check"], home, tmp_path).returncode == 0
    assert run([sys.executable, INSTALLER, "--user"], home, tmp_path).returncode == 0  # again
    res = run([sys.executable, INSTALLER, "--user", "--uninstall"], home, tmp_path)
    assert res.returncode == 0 and not target.exists()
    assert run([sys.executable, INSTALLER, "--user", "--check"], home, tmp_path).returncode == 1


def test_block_yaml_lives_in_one_tree():
    trees = {os.path.relpath(os.path.dirname(p), ROOT).split(os.sep)[:2] == ["flowgraphs", "grc"]
             for p in glob.glob(os.path.join(ROOT, "flowgraphs", "**", "*.block.yml"),
                                recursive=True)}
    assert trees == {True}


@pytest.mark.skipif(shutil.which("grcc") is None, reason="grcc is not installed")
def test_grcc_compiles_every_grc_in_a_clean_shell(tmp_path):
    pytest.importorskip("gnuradio")
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    system_wide = run([sys.executable, INSTALLER, "--check"], home, tmp_path).returncode == 0
    if not system_wide:  # the control: with nothing installed, grcc does not know the blocks
        control = os.path.join(ROOT, "flowgraphs", "gsc_loopback.grc")
        res = run(["grcc", "-o", str(out), control], home, tmp_path)
        assert not glob.glob(str(out / "*.py")), "gsc's blocks found with nothing installed"
    res = run([sys.executable, INSTALLER, "--user"], home, tmp_path)
    assert res.returncode == 0, res.stderr
    res = run(["grcc", "-o", str(out), *GRC_FILES], home, tmp_path)
    made = {os.path.basename(p) for p in glob.glob(str(out / "*.py"))}
    want = {options_id(p) + ".py" for p in GRC_FILES}
    assert res.returncode == 0 and made == want, (res.stderr or res.stdout)[-2000:]
    # the generated code's block imports resolve through the installed gsc.pth alone
    code = ("from flowgraphs import gsc_gr; from flowgraphs.device import gr_blocks; "
            "import flowgraphs; print(flowgraphs.__file__)")
    res = run([sys.executable, "-c", code], home, tmp_path)
    assert res.returncode == 0, res.stderr
    assert os.path.realpath(res.stdout.strip()).startswith(os.path.realpath(ROOT))
