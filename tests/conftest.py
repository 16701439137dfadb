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
