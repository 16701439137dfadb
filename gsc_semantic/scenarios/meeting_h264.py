"""H.264 baseline of the meeting scenario: libx264 (PyAV) + 5G LDPC/QAM/OFDM over gsc_phy.

**Encoding**: the whole clip, one I-frame then P-frames (``tune=zerolatency``: no B-frames,
one packet per frame, no lookahead), ``preset=medium``; the CRF is binary-searched so that
the clip fits the byte budget. x264's SEI (its version/options string, ~600 bytes) is
stripped: the receiver needs only SPS, PPS and slices. Each frame's packet is sent as a
2-byte little-endian length followed by its Annex-B bytes, all frames back to back in one
byte stream (counted in the budget).

**Transmission**: the stream, MSB-first, fills transport blocks and frames of one MCS
chosen by genie link adaptation (:class:`gsc_semantic.baselines.AdaptiveLink`, as for the
JPEG/WebP baselines), no ARQ. **Reception**: packets are parsed in order; a packet whose
bytes (length included) touch a failed block is lost, and when a *length* is lost the
receiver loses sync and every later packet is lost too. Surviving packets are fed to the
H.264 decoder (FFmpeg, its own error concealment); a frame with no decoded picture shows the
previous one (mid-gray before the first). Every frame is counted as ``delivered``,
``lost`` (its packet failed) or ``undecodable`` (packet arrived, decoder gave no picture).

Example::

    >>> frames = np.zeros((4, 64, 64, 3), np.uint8)
    >>> pk = encode_h264(frames, crf=30)
    >>> len(pk), decode_h264(pk, [True] * 4, 64)[0].shape
    (4, (4, 64, 64, 3))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from bridge.common import ConfigError
from gsc_phy.bits import bits_to_bytes, bytes_to_bits
from gsc_semantic.baselines import AdaptiveLink

__all__ = ["encode_h264", "decode_h264", "strip_sei", "fit_h264", "H264Result", "H264Link",
           "LENGTH_BYTES"]

LENGTH_BYTES = 2
_MAX_CRF = 51


def _av():
    try:
        import av
    except ImportError as err:
        raise ConfigError("the H.264 baseline needs PyAV (`pip install av`)") from err
    return av


def strip_sei(packet: bytes) -> bytes:
    """Drop SEI NAL units (type 6) from an Annex-B packet, keep everything else.

    Example::

        >>> strip_sei(b"\\x00\\x00\\x00\\x01\\x06abc\\x00\\x00\\x00\\x01\\x65xyz")
        b'\\x00\\x00\\x00\\x01exyz'
    """
    starts, i = [], 0
    while True:
        j = packet.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j - 1 if j > 0 and packet[j - 1] == 0 else j)
        i = j + 3
    if not starts:
        return packet
    out = [packet[:starts[0]]]
    for a, b in zip(starts, starts[1:] + [len(packet)], strict=True):
        nal = packet[a:b]
        header = nal[nal.index(b"\x00\x00\x01") + 3:]
        if header and header[0] & 0x1F == 6:
            continue
        out.append(nal)
    return b"".join(out)


def encode_h264(frames: np.ndarray, crf: int, preset: str = "medium") -> list[bytes]:
    """Encode uint8 frames [T, H, W, 3] (H, W even) -> one Annex-B packet per frame (SEI
    stripped)."""
    av = _av()
    t, h, w = frames.shape[:3]
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base = Fraction(1, 25)
    ctx.options = {"crf": str(int(crf)), "preset": preset, "tune": "zerolatency",
                   "x264-params": f"keyint={max(t, 1) + 1}:scenecut=0"}
    packets: dict[int, bytes] = {}
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf = vf.reformat(format="yuv420p")
        vf.pts = i
        for p in ctx.encode(vf):
            packets[int(p.pts)] = packets.get(int(p.pts), b"") + bytes(p)
    for p in ctx.encode(None):
        packets[int(p.pts)] = packets.get(int(p.pts), b"") + bytes(p)
    return [strip_sei(packets.get(i, b"")) for i in range(t)]


def decode_h264(packets: list[bytes], arrived: list[bool], size: int
                ) -> tuple[np.ndarray, list[str]]:
    """Decode the packets that arrived; frames without a picture repeat the previous one.

    :return: uint8 frames [T, size, size, 3] and a status per frame (``delivered``,
        ``lost``, ``undecodable``).
    """
    av = _av()
    ctx = av.CodecContext.create("h264", "r")
    pictures: dict[int, np.ndarray] = {}

    def take(frames) -> None:
        for fr in frames:
            if fr.pts is not None:
                pictures[int(fr.pts)] = fr.to_ndarray(format="rgb24")

    for i, (data, ok) in enumerate(zip(packets, arrived, strict=True)):
        if not ok or not data:
            continue
        pkt = av.Packet(data)
        pkt.pts = i
        try:
            take(ctx.decode(pkt))
        except av.error.FFmpegError:
            continue
    try:
        take(ctx.decode(None))
    except av.error.FFmpegError:
        pass
    out, status = [], []
    last = np.full((size, size, 3), 128, np.uint8)
    for i, ok in enumerate(arrived):
        if i in pictures and pictures[i].shape == last.shape:
            last = pictures[i]
            status.append("delivered")
        else:
            status.append("undecodable" if ok else "lost")
        out.append(last)
    return np.stack(out), status


def _stream_bytes(packets: list[bytes]) -> int:
    return sum(len(p) + LENGTH_BYTES for p in packets)


def fit_h264(frames: np.ndarray, max_bytes: int) -> tuple[int | None, list[bytes]]:
    """Lowest CRF (best quality) whose stream (lengths included) fits ``max_bytes``;
    ``(None, [])`` when even CRF 51 does not fit."""
    cache: dict[int, list[bytes]] = {}

    def enc(crf: int) -> list[bytes]:
        if crf not in cache:
            cache[crf] = encode_h264(frames, crf)
        return cache[crf]

    if _stream_bytes(enc(_MAX_CRF)) > max_bytes:
        return None, []
    lo, hi = 0, _MAX_CRF  # invariant: hi fits
    if _stream_bytes(enc(lo)) <= max_bytes:
        return lo, enc(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _stream_bytes(enc(mid)) <= max_bytes:
            hi = mid
        else:
            lo = mid
    return hi, enc(hi)


@dataclass
class H264Result:
    """Frames shown, per-frame status, CRF, bytes sent and channel uses."""

    frames: np.ndarray
    status: list[str]
    crf: int | None
    bytes_sent: int
    budget_bytes: int
    channel_uses: float
    mcs: str
    blocks: int = 0
    blocks_failed: int = 0
    counts: dict = field(default_factory=dict)


class H264Link(AdaptiveLink):
    """The H.264 baseline at bandwidth ratio ``rho`` (see the module notes).

    :input frames: uint8 [T, H, W, 3].
    :input snr_db: Average Es/N0 in dB.
    :output: :class:`H264Result`.
    """

    def __call__(self, frames: np.ndarray, snr_db: float, channel_seed: int | None = None
                 ) -> H264Result:
        t, size = frames.shape[0], frames.shape[1]
        budget = self.budget((3, size, size), snr_db)
        frame = budget.frame
        max_bytes = t * budget.payload_bits // 8
        crf, packets = fit_h264(frames, max_bytes)
        mcs = f"{budget.mcs.name} {budget.mcs.modulation} R={frame.code_rate:.3f}"
        if crf is None:
            shown = np.full_like(frames, 128)
            return H264Result(shown, ["lost"] * t, None, 0, max_bytes, 0.0, mcs,
                              counts={"lost": t})
        data = b"".join(len(p).to_bytes(LENGTH_BYTES, "little") + p for p in packets)
        per_block = frame.payload_bits_per_block
        cws = frame.codewords_per_frame
        bits = bytes_to_bits(data)
        num_frames = math.ceil(math.ceil(bits.size / per_block) / cws)
        stream = np.zeros(num_frames * cws * per_block, np.uint8)
        stream[:bits.size] = bits
        rx, ok = self.transmit(stream, budget, True, channel_seed)
        rx_bytes = bits_to_bytes(rx[:bits.size])

        def intact(a: int, b: int) -> bool:  # bytes [a, b) all in passing blocks
            return bool(ok[(8 * a) // per_block:(8 * b - 1) // per_block + 1].all())

        arrived, pos, in_sync = [], 0, True
        for p in packets:
            in_sync = in_sync and intact(pos, pos + LENGTH_BYTES)
            end = pos + LENGTH_BYTES + len(p)
            arrived.append(in_sync and intact(pos, end))
            pos = end
        received = [rx_bytes[a + LENGTH_BYTES:a + LENGTH_BYTES + len(p)]
                    for a, p in zip(np.cumsum([0] + [len(q) + LENGTH_BYTES
                                                     for q in packets[:-1]]), packets,
                                    strict=True)]
        shown, status = decode_h264(received, arrived, size)
        counts = {s: status.count(s) for s in ("delivered", "lost", "undecodable")}
        cu = bits.size / budget.bits_per_channel_use
        return H264Result(shown, status, crf, len(data), max_bytes, cu, mcs,
                          int(ok.size), int((~ok).sum()), counts)
