"""Transports as objects with one interface (gsc_semantic.transports): the simulated link,
the streamed loopback and SigMF recordings are all passed to the links as objects."""

from __future__ import annotations

import ast
import os

import numpy as np
import pytest

from bridge.common import ConfigError
from gsc_semantic.baselines import AdaptiveLink, SeparationBaseline, as_transport
from gsc_semantic.transports import SIMULATED, SimulatedTransport, Transport

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Recorder(Transport):
    """A streamed transport that delivers every block and remembers what it was asked."""

    def __init__(self):
        self.calls = []
        self.context = ""

    def send(self, bits, budget, channel_seed=None, *, sender=None):
        self.calls.append((self.context, bits.size, budget.mcs.key, channel_seed, sender))
        return bits.copy(), np.ones(bits.size // budget.frame.payload_bits_per_block, bool)

    def take(self):
        return {"transmissions": len(self.calls)}


def test_as_transport_turns_legacy_spellings_into_objects():
    assert as_transport(None) is SIMULATED and as_transport("sim") is SIMULATED
    obj = Recorder()
    assert as_transport(obj) is obj
    with pytest.raises(ConfigError, match="transport"):
        as_transport("radio")
    assert isinstance(SIMULATED, SimulatedTransport) and not SIMULATED.streamed
    SIMULATED.context = "jpeg"  # shared by every link: naming is ignored
    assert SIMULATED.context == "" and SIMULATED.take() is None


def test_links_send_through_the_transport_object():
    rec = Recorder()
    link = SeparationBaseline("webp", "awgn", 1 / 12, transport=rec, seed=0)
    assert link.transport is rec and all(m.repetitions == 1 for m in link.mcs_table)
    rec.context = "webp"
    images = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    import torch

    res = link(torch.from_numpy(images), 20.0, channel_seed=7)
    assert rec.calls and all(c[0] == "webp" and c[3] == 7 and c[4] is link for c in rec.calls)
    assert all(r.delivered for r in res.records)
    assert rec.take() == {"transmissions": len(rec.calls)}


def test_simulated_transport_is_the_default_and_delivers_at_high_snr():
    link = AdaptiveLink("awgn", 1 / 12, seed=0)
    assert link.transport is SIMULATED
    assert any(m.repetitions > 1 for m in link.mcs_table)  # slot aggregation: sim only
    budget = link.budget((1, 28, 28), 20.0)
    stream, _ = link.empty_stream(2, budget)
    stream = np.random.default_rng(1).integers(0, 2, stream.size).astype(np.uint8)
    bits, ok = link.transmit(stream, budget, True, channel_seed=3)
    assert ok.all() and np.array_equal(bits, stream)
    with pytest.raises(ValueError, match="sending AdaptiveLink"):
        SIMULATED.send(stream, budget)


def test_no_link_kind_strings_compared_below_the_edges():
    """Only the parsers at the edges (``--link`` text, the legacy library spellings) look at
    ``"sim"``/``"loopback"``; every other module works with transport objects."""
    edges = {"gsc_semantic/baselines.py", "gsc_semantic/scenarios/common.py",
             "gsc_semantic/scenarios/layered_link.py"}
    hits = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "gsc_semantic")):
        for f in files:
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
            if rel in edges:
                continue
            with open(os.path.join(ROOT, rel), encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Compare):
                    consts = [c.value for c in [node.left, *node.comparators]
                              if isinstance(c, ast.Constant)]
                    if {"sim", "loopback"} & set(consts):
                        hits.append(f"{rel}:{node.lineno}")
    assert hits == []
