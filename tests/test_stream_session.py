"""Persistent streaming sessions (:mod:`gsc_stream.session`): one flowgraph and decoder
service for many transmissions.

* frame numbers run on across a session's transmissions (:func:`renumber`);
* three transmissions with different payloads go through one flowgraph, each with exact
  accounting (``frames_sent == frames_decoded + sum(frames_lost)``, the right frames delivered);
* a frame of transmission i injected again during transmission i+1 (a late or duplicate
  burst) is never counted for i+1;
* Es/N0 changes per transmission in the running flowgraph (a ``set`` control frame);
* closing stops every child process group; a closed session refuses to send;
* :class:`StreamTransport` keeps one session per MCS and Es/N0 and closes them all.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from bridge.common import ConfigError
from bridge.interpreters import find_radio_python
from flowgraphs.gsc_ofdm.messages import tx_frame
from gsc_semantic.baselines import AdaptiveLink
from gsc_semantic.stream_transport import StreamTransport
from gsc_stream.session import LoopbackSession, renumber
from gsc_stream.stream_decode import loopback_payload, payload_seq

_RADIO = find_radio_python()
needs_radio = pytest.mark.skipif(
    not (_RADIO and _RADIO.get("gnuradio")),
    reason="no radio interpreter (GNU Radio) found: install gnuradio python3-zmq or set "
    "GSC_RADIO_PYTHON",
)


def _gone(pid: int) -> bool:
    """Whether the process group ``pid`` leads is empty (killed members take a moment to
    be reaped by init)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        try:
            os.killpg(pid, 0)  # each child leads its own process group
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _payloads(session: LoopbackSession, frames: int, seed: int) -> np.ndarray:
    f = session.codec.frame
    return np.stack([loopback_payload(i, seed, f.codewords_per_frame, f.payload_bits_per_block)
                     for i in range(frames)])


def test_renumber_runs_frame_numbers_on_and_keeps_the_rest():
    p = np.random.default_rng(0).integers(0, 2, (3, 2, 64), dtype=np.uint8)
    q = renumber(p, 1000)
    assert [payload_seq(x) for x in q] == [1000, 1001, 1002]
    assert np.array_equal(q.reshape(3, -1)[:, 32:], p.reshape(3, -1)[:, 32:])
    assert payload_seq(p[0]) != 1000  # the input is not changed


def test_bad_session_options_are_one_clear_error():
    with pytest.raises(ConfigError, match="--channel"):
        LoopbackSession(channel="rayleigh", start=False)
    with pytest.raises(ConfigError, match="workers"):
        LoopbackSession(workers=0, start=False)


@needs_radio
def test_three_transmissions_one_flowgraph_exact_accounting_and_clean_close(tmp_path):
    with LoopbackSession(snr_db=20.0, k=308, n=1536, seed=3, out_dir=str(tmp_path)) as s:
        pids = s.children()
        assert len(pids) == 2
        results = []
        for j, frames in enumerate((4, 6, 5)):
            pl = _payloads(s, frames, seed=10 + j)  # a different payload each time
            r = s.send(pl)
            results.append(r)
            assert r["frames_sent"] == frames
            assert r["frames_decoded"] + sum(r["frames_lost"].values()) == frames
            assert r["frames_lost_total"] == sum(r["frames_lost"].values())
            assert r["frames_decoded"] == frames  # 20 dB AWGN: all arrive
            assert r["delivered_seqs"] == list(range(frames))
            assert s.children() == pids  # the same flowgraph and decoder service
        assert [r["first_seq"] for r in results] == [0, 4, 10]
        # a frame of the last transmission, sent again now, is not the next one's
        f = s.codec.frame
        old = renumber(_payloads(s, 5, seed=12), 10)[2:3]
        _, x = s.codec.encode(old)
        assert s.src.send(tx_frame(x[0], 12, s.format_id), timeout_ms=2000)
        pl = _payloads(s, 3, seed=12)  # same bits as that frame's transmission
        assert pl.shape[1:] == (f.codewords_per_frame, f.payload_bits_per_block)
        r = s.send(pl)
        assert r["frames_sent"] == 3 and r["frames_decoded"] == 3
        assert r["delivered_seqs"] == [0, 1, 2] and r["frames_lost_total"] == 0
        assert r["stale_results"] + s.stale_results >= 1
        # Es/N0 set per transmission: far below the threshold nothing arrives, then all again
        r = s.send(_payloads(s, 4, seed=13), snr_db=-10.0)
        assert r["snr_db"] == -10.0 and r["frames_decoded"] == 0
        assert r["frames_lost_total"] == sum(r["frames_lost"].values()) == 4
        r = s.send(_payloads(s, 4, seed=14), snr_db=20.0)
        assert r["frames_decoded"] == 4 and r["delivered_seqs"] == [0, 1, 2, 3]
    assert all(_gone(p) for p in pids)
    doc = s.summary
    assert doc["transmissions"] == 6 and doc["frames_numbered"] == 26
    assert doc["radio"]["channel"]["snr_changes"] == 2
    assert doc["stale_results"] >= 1
    assert (tmp_path / "session.json").is_file()
    with pytest.raises(ConfigError, match="closed"):
        s.send(pl)


@needs_radio
def test_stream_transport_keeps_one_session_per_mcs_and_closes_them(tmp_path):
    transport = StreamTransport("awgn", seed=2, out_dir=str(tmp_path))
    link = AdaptiveLink("awgn", 1 / 12, transport=transport)
    budget = link.budget((3, 64, 64), 20.0, 9)
    sent = []
    with transport:
        for j in range(3):
            stream, _ = link.empty_stream(1, budget)
            stream[:] = np.random.default_rng(j).integers(0, 2, stream.size, dtype=np.uint8)
            rx, ok = link.transmit(stream, budget, True, channel_seed=j)
            assert ok.all() and np.array_equal(rx, stream)
            sent.append(stream)
        assert len(transport.sessions) == 1 and transport.sessions_started == 1
        pids = next(iter(transport.sessions.values())).children()
        c = transport.take()
        assert c["transmissions"] == 3 and c["frames_lost_total"] == 0
        assert c["frames_sent"] == c["frames_decoded"] > 0
    assert not transport.sessions and all(_gone(p) for p in pids)
    for i in (1, 2, 3):
        assert (tmp_path / f"tx{i:04d}" / "loopback.json").is_file()
