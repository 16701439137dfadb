"""Frame delivery through the emulated radio path, in one process (ML side, numpy + gsc_phy).

The same numpy code the GNU Radio blocks wrap, chained without ZeroMQ so that a sweep point
costs seconds: gsc_phy encodes numbered test frames (CRC-24A, 5G LDPC, QPSK), the burst
modulator (:class:`flowgraphs.gsc_ofdm.tx.BurstStream`, random gaps as ``gsc_tx`` makes
them) sends them through :class:`hardware.impairments.Impairments` (the ``zmq_channel``
device flowgraph's block), the streaming receiver
(:class:`flowgraphs.gsc_ofdm.rx.StreamReceiver`, with the arguments of ``gsc_rx``) finds and
equalises the bursts, and gsc_phy decodes them. A frame is *delivered* when every transport
block passes its CRC and the payload is the one sent.

:func:`run_emulated` returns ``{"frames", "delivered", "delivery", "detected",
"crc_failed", "false_frames"}``.

>>> r = run_emulated({"esno_db": 15.0, "cfo_subcarriers": 0.5}, frames=4)  # doctest: +SKIP
>>> r["delivered"]  # doctest: +SKIP
4
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.rx import StreamReceiver
from flowgraphs.gsc_ofdm.tx import BurstModulator, BurstStream
from hardware.impairments import ImpairmentConfig, Impairments

__all__ = ["RX_ARGS", "run_emulated"]

#: StreamReceiver arguments of the ``gsc_rx`` flowgraph (flowgraphs/gsc_rx_gen.py).
RX_ARGS: dict[str, Any] = {"threshold": 0.1, "xcorr_threshold": 0.35, "max_int_cfo": 4,
                           "time_interp": "drift"}

_CODECS: dict[tuple, Any] = {}


def _codec(modulation: str, k: int, n: int):
    """gsc_phy's stream codec and the grid layout for one frame format (cached)."""
    key = (modulation, k, n)
    if key not in _CODECS:
        from gsc_phy.config import LinkConfig

        from .grid_export import export_grid
        from .stream_decode import StreamCodec

        cfg = LinkConfig(modulation=modulation, k=k, n=n)
        _CODECS[key] = (StreamCodec(cfg), GridLayout.from_dict(export_grid(cfg)))
    return _CODECS[key]


def run_emulated(impairments: Mapping[str, Any], frames: int = 50, seed: int = 0,
                 modulation: str = "qpsk", k: int = 1024, n: int = 2048,
                 gap_min: int = 64, gap_max: int = 512,
                 chunk: int = 8192) -> dict[str, int | float]:
    """Send ``frames`` numbered frames through ``impairments`` and count the deliveries.

    :param impairments: :class:`~hardware.impairments.ImpairmentConfig` fields (``fft_size``
        and ``samp_rate_hz`` default to the grid's).
    :param frames: Frames sent.
    :param seed: Seed of the payloads, gaps and (unless given) the impairments.
    :param chunk: Samples per receiver call (the stream is processed in pieces, as in GNU Radio).
    :returns: counts and ``delivery`` = delivered / frames.
    """
    from .stream_decode import loopback_payload, payload_crc32, payload_seq

    codec, layout = _codec(modulation, k, n)
    f = codec.frame
    fs = layout.fft_size * layout.subcarrier_spacing_hz
    d = {"seed": seed, **dict(impairments)}
    if "cfo_subcarriers" in d:
        d.setdefault("fft_size", layout.fft_size)
    cfg = ImpairmentConfig.from_dict(d, samp_rate_hz=fs)
    imp = Impairments(cfg)
    stream = BurstStream(BurstModulator(layout), gap_min, gap_max, seed)
    want = {}
    for start in range(0, frames, 32):
        seqs = list(range(start, min(frames, start + 32)))
        pl = np.stack([loopback_payload(s, seed, f.codewords_per_frame,
                                        f.payload_bits_per_block) for s in seqs])
        _, x = codec.encode(pl)
        for s, xs, p in zip(seqs, x, pl, strict=True):
            stream.push(xs, s)
            want[s] = payload_crc32(p)
    rx = StreamReceiver(layout, **RX_ARGS)
    bursts = []
    lead = np.zeros(int(np.random.default_rng(seed).integers(100, 600)), np.complex64)
    bursts += rx.process(imp.process(lead))
    while True:
        x, _ = stream.read(chunk)
        if not len(x):
            break
        bursts += rx.process(imp.process(x))
    bursts += rx.process(imp.process(np.zeros(gap_max + 256, np.complex64)))
    bursts += rx.flush()
    delivered: set[int] = set()
    crc_failed = false_frames = 0
    for i in range(0, len(bursts), 32):
        part = bursts[i : i + 32]
        out = codec.decode(np.stack([b.x_hat for b in part]), np.stack([b.no_eff for b in part]))
        for j in range(len(part)):
            if not out.block_ok[j].all():
                crc_failed += 1
                continue
            s = payload_seq(out.bits_hat[j])
            if want.get(s) == payload_crc32(out.bits_hat[j]) and s not in delivered:
                delivered.add(s)
            else:
                false_frames += 1
    return {"frames": frames, "delivered": len(delivered), "delivery": len(delivered) / frames,
            "detected": len(bursts), "crc_failed": crc_failed, "false_frames": false_frames}
