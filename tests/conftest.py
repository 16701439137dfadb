"""Shared pytest setup. Must import under both interpreters: no torch, no gnuradio here.

Under the radio interpreter (no torch) only the radio-side test files are collected:
those named ``test_bridge_*``, ``test_radio_*``, ``test_flowgraph_*`` or ``test_hardware_*``.
"""

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

RADIO_SIDE_PREFIXES = ("test_bridge_", "test_radio_", "test_flowgraph_", "test_hardware_")
ML_SIDE = importlib.util.find_spec("torch") is not None


def pytest_ignore_collect(collection_path, config):
    name = collection_path.name
    if not ML_SIDE and name.startswith("test_") and name.endswith(".py"):
        return not name.startswith(RADIO_SIDE_PREFIXES)
    return None


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a module: faster on the shared 2-core machine. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def wheel_demo(tmp_path_factory):
    """gsc built as a wheel, installed into a fresh venv and ``gsc demo --quick`` run from a
    folder outside the checkout. Returns ``(venv, demo_out, wheel)``.

    The fresh venv reaches this venv's dependencies (torch, Sionna, ...) through a ``.pth``
    line, so nothing is downloaded; gsc itself comes only from the wheel.
    """
    import shutil
    import subprocess

    from wheel_install import build_wheel, fresh_venv

    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(ROOT, root / "dist", root / "src")
    venv = fresh_venv(root / "venv", wheel)
    work = root / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GSC_CHECKPOINTS")}
    res = subprocess.run([str(venv / "bin" / "gsc"), "demo", "--quick", "--out", "demo"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    shutil.rmtree(root / "src", ignore_errors=True)
    return venv, work / "demo", wheel


@pytest.fixture(scope="session")
def road_tiny_checkpoints(tmp_path_factory):
    """Road models after one training step each (the pipeline, not their quality)."""
    from gsc_semantic.scenarios.road_train import train_all

    root = tmp_path_factory.mktemp("road_ckpt")
    train_all(str(root), seg_steps=1, codec_steps=1, scenes=4)
    return str(root)
