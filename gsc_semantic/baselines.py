"""Separation baselines: an image codec (JPEG, WebP, AVIF) over gsc's 5G-LDPC PHY, and the
capacity-achieving separation bound, at the same channel-use budget as gsc.

**Budget.** A bandwidth ratio ρ gives every image ``ρ·C·H·W`` complex channel uses, counting
everything the PHY sends (coding, pilots, guard and DC carriers, cyclic prefix:
:attr:`gsc_phy.frame.FrameFormat.channel_uses_per_frame`). Several images share a frame and a
fractional frame counts as its share, so an image may carry

    ``payload_bits = floor(ρ·C·H·W × payload_bits_per_frame / channel_uses_per_frame)``

bits, where ``payload_bits_per_frame = codewords × (k − 24)`` is exactly the frame format's
payload (data REs × bits/symbol × code rate, minus the per-block CRC-24A). The MCS is chosen
by genie link adaptation (:func:`gsc_phy.mcs.select_mcs`: the transmitter knows the average
Es/N0; highest rate with measured BLER < 10 %); below the most robust MCS's threshold the
baseline still sends with that MCS (``mcs_meets_target=False`` in the records).

**Source coding.** The codec quality is binary-searched so the file fits ``payload_bytes``
(Pillow; 8-bit samples). Fixed parts the receiver already knows are not sent
(``compact=True``, the default): JPEG drops SOI, JFIF/APPn/COM segments, its quantisation
tables (one byte carries the quality, the receiver regenerates the IJG tables), the frame
and scan headers (rebuilt from the known image shape) and, when the standard Huffman tables
beat optimised ones, the DHT segments too; WebP drops the RIFF/VP8 container, start code
and dimensions (the image shape is known). AVIF is sent as a whole
file (its HEIF boxes are not compacted). No EXIF/ICC is ever written. An image whose lowest
quality does not fit is **not sent**.

**Transmission.** Image ``i`` owns bits ``[i·B, (i+1)·B)`` of one bit stream (``B`` =
``payload_bits``; its file MSB-first at the start, zero fill after it), the stream is cut
into transport blocks and frames (zero-padded to whole frames) and sent through
:class:`gsc_phy.link.Link`. There is no ARQ: an image is **delivered** when every transport
block carrying its bytes passed the CRC; otherwise it is lost. The receiver decodes the
image's whole region (the decoders ignore trailing bytes, so blocks holding only fill do not
matter). A lost or unsent image is shown as ``on_loss``: ``"blank"`` (the fill image, mid-gray
0.5 unless a mean image is given, i.e. what a receiver with a prior and no data shows) or
``"previous"`` (the last delivered image, freeze-frame as in video; blank before the first).

**Bound.** :class:`CapacityBound` gives every image ``floor(ρ·C·H·W × data fraction × C(snr))``
bits, where the data fraction is the frame's data REs / channel uses (same pilots, guards,
CP as the real link) and C the AWGN capacity ``log2(1+snr)`` or, for fading channels, the
ergodic capacity ``E[log2(1+snr|h|²)]`` (Rayleigh in closed form, other models measured on
gsc_phy channel samples); the best of JPEG/WebP at that size arrives without error. This is
the *capacity-achieving separation bound (JPEG/WebP at capacity)*: no real code reaches it.

Example::

    >>> import torch
    >>> from gsc_semantic.baselines import SeparationBaseline
    >>> base = SeparationBaseline("webp", channel="awgn", rho=1 / 12)
    >>> out = base(torch.rand(2, 3, 64, 64), snr_db=20.0)
    >>> out.images.shape, out.records[0].budget_bytes > 0
    (torch.Size([2, 3, 64, 64]), True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, features

from bridge.common import ConfigError
from gsc_phy.bits import bits_to_bytes, bytes_to_bits
from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat, bandwidth_ratio
from gsc_phy.link import Link
from gsc_phy.mcs import (
    MCS_TABLE,
    SINGLE_SLOT_TABLE,
    TARGET_BLER,
    Mcs,
    mcs_by_index,
    select_mcs,
)
from gsc_semantic.transports import SIMULATED

__all__ = [
    "AdaptiveLink",
    "as_transport",
    "CODECS",
    "available_codecs",
    "CodecError",
    "Encoded",
    "encode",
    "decode",
    "encode_to_fit",
    "image_key",
    "as_batch",
    "quality_range",
    "LinkBudget",
    "link_budget",
    "capacity_budget",
    "ergodic_capacity",
    "ImageRecord",
    "BaselineResult",
    "SeparationBaseline",
    "CapacityBound",
]

#: Codec names understood here (``avif`` needs Pillow built with libavif).
CODECS: tuple[str, ...] = ("jpeg", "webp", "avif")
ON_LOSS = ("blank", "previous")

_SOI = b"\xff\xd8"
_VP8_START = b"\x9d\x01\x2a"


class CodecError(ValueError):
    """Bytes that do not decode to an image of the expected shape."""


def available_codecs() -> tuple[str, ...]:
    """Codecs this Pillow build can write."""
    have = {"jpeg": features.check("jpg"), "webp": features.check("webp"),
            "avif": features.check("avif")}
    return tuple(c for c in CODECS if have[c])


def quality_range(codec: str) -> tuple[int, int]:
    """Lowest and highest quality setting searched for ``codec``."""
    _check_codec(codec)
    return (1, 100) if codec == "jpeg" else (0, 100)


def _check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise ConfigError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    if codec not in available_codecs():
        raise ConfigError(f"this Pillow build cannot write {codec}")


# ------------------------------------------------------------------------ image <-> PIL
def _to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """[C, H, W] float in [0, 1] -> [H, W] or [H, W, 3] uint8 (round half up)."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(f"expected an image [C, H, W] with C = 1 or 3, got {arr.shape}")
    u8 = np.clip(np.rint(np.clip(arr, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    return u8[0] if u8.shape[0] == 1 else np.ascontiguousarray(u8.transpose(1, 2, 0))


def _to_pil(image: torch.Tensor | np.ndarray) -> Image.Image:
    u8 = _to_uint8(image)
    return Image.fromarray(u8, mode="L" if u8.ndim == 2 else "RGB")


def _from_pil(im: Image.Image, shape: tuple[int, int, int]) -> torch.Tensor:
    c, h, w = shape
    im = im.convert("L" if c == 1 else "RGB")
    if im.size != (w, h):
        raise CodecError(f"decoded size {im.size} differs from the expected {(w, h)}")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    arr = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


# ------------------------------------------------------------------------ JPEG compaction
def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split a JPEG into its header segments (marker, whole segment) and the rest from SOS."""
    if not data.startswith(_SOI):
        raise CodecError("not a JPEG stream")
    segs, i = [], 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise CodecError("corrupt JPEG header")
        marker = data[i + 1]
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return segs, data[i:]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        segs.append((marker, data[i:i + 2 + length]))
        i += 2 + length
    raise CodecError("JPEG without a scan")


def _jpeg_save(im: Image.Image, quality: int, optimize: bool) -> bytes:
    buf = io.BytesIO()
    kwargs = {"subsampling": 2} if im.mode == "RGB" else {}  # 4:2:0, Pillow's default
    im.save(buf, "JPEG", quality=quality, optimize=optimize, progressive=False, **kwargs)
    return buf.getvalue()


@functools.lru_cache(maxsize=512)
def _jpeg_known_parts(mode: str, width: int, height: int, quality: int, std_huffman: bool
                      ) -> tuple[bytes, bytes]:
    """What both ends derive from the image shape and the quality byte: the DQT segments
    (IJG scaling of the Annex K tables), the standard DHT segments (when used), SOF0 and the
    SOS header. Regenerated by encoding a dummy image with the same settings.

    :output head, sos: ``head`` = DQT [+ standard DHT] + SOF0; ``sos`` = the SOS header.
    """
    dummy = _jpeg_save(Image.new(mode, (width, height), 128), quality, False)
    segs, scan = _jpeg_segments(dummy)
    tables = (0xDB, 0xC4) if std_huffman else (0xDB,)
    head = b"".join(s for m, s in segs if m in tables)
    head += b"".join(s for m, s in segs if m == 0xC0)
    sos_len = int.from_bytes(scan[2:4], "big")
    return head, scan[:2 + sos_len]


#: JPEG segments never sent: DQT, SOF0 (rebuilt from quality and shape), APPn, COM.
_JPEG_DROP = frozenset({0xDB, 0xC0, 0xFE} | set(range(0xE0, 0xF0)))
_NON_BASELINE_SOF = frozenset(set(range(0xC1, 0xD0)) - {0xC4, 0xC8, 0xCC})


def _jpeg_compact(im: Image.Image, quality: int) -> bytes:
    """``[quality | 0x80 if standard Huffman]`` + optimised DHT (if used) + entropy-coded
    data + EOI: the smaller of the optimised- and standard-Huffman encodings."""
    best = b""
    for std in (False, True):
        segs, scan = _jpeg_segments(_jpeg_save(im, quality, optimize=not std))
        if any(m in _NON_BASELINE_SOF for m, _ in segs):
            raise CodecError("only baseline sequential JPEG is compacted")
        drop = _JPEG_DROP | ({0xC4} if std else set())
        sos_len = int.from_bytes(scan[2:4], "big")
        body = b"".join(s for m, s in segs if m not in drop) + scan[2 + sos_len:]
        data = bytes([quality | (0x80 if std else 0)]) + body
        if not best or len(data) < len(best):
            best = data
    return best


def _jpeg_expand(data: bytes, mode: str, width: int, height: int) -> bytes:
    if len(data) < 3:
        raise CodecError("empty JPEG payload")
    quality, std = data[0] & 0x7F, bool(data[0] & 0x80)
    if not 1 <= quality <= 100:
        raise CodecError(f"bad JPEG quality byte {data[0]}")
    head, sos = _jpeg_known_parts(mode, width, height, quality, std)
    body, i = data[1:], 0
    while i + 4 <= len(body) and body[i] == 0xFF and body[i + 1] == 0xC4:  # sent DHTs
        i += 2 + int.from_bytes(body[i + 2:i + 4], "big")
    return _SOI + head + body[:i] + sos + body[i:]


# ------------------------------------------------------------------------ WebP compaction
def _webp_compact(full: bytes, width: int, height: int) -> bytes:
    if full[:4] != b"RIFF" or full[8:16] != b"WEBPVP8 ":
        raise CodecError("expected a simple lossy WebP (RIFF/WEBP/VP8 chunk)")
    size = int.from_bytes(full[16:20], "little")
    vp8 = full[20:20 + size]
    dims = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    if vp8[3:6] != _VP8_START or vp8[6:10] != dims:
        raise CodecError("unexpected VP8 key-frame header")
    return vp8[:3] + vp8[10:]


def _webp_expand(data: bytes, width: int, height: int) -> bytes:
    if len(data) < 4:
        raise CodecError("empty WebP payload")
    dims = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    vp8 = data[:3] + _VP8_START + dims + data[3:]
    chunk = vp8 + (b"\x00" if len(vp8) % 2 else b"")
    return (b"RIFF" + (12 + len(chunk)).to_bytes(4, "little") + b"WEBPVP8 "
            + len(vp8).to_bytes(4, "little") + chunk)


def _isobmff_trim(data: bytes) -> bytes:
    """Top-level boxes up to and including ``mdat`` (drops trailing fill)."""
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        if size < 8:
            break
        i += size
        if kind == b"mdat":
            break
    return data[:i]


# ------------------------------------------------------------------------ codec API
def encode(image: torch.Tensor | np.ndarray, codec: str, quality: int,
           compact: bool = True) -> bytes:
    """Encode one image [C, H, W] in [0, 1] (C = 1 or 3) at ``quality``.

    :param compact: drop what the receiver knows (see the module notes); ``False`` gives
        the plain file (still without EXIF/ICC; JPEG with optimised Huffman tables).

    .. code-block:: python

        >>> import torch
        >>> from gsc_semantic.baselines import decode, encode
        >>> data = encode(torch.rand(3, 32, 32), "webp", 50)
        >>> decode(data, "webp", (3, 32, 32)).shape
        torch.Size([3, 32, 32])
    """
    _check_codec(codec)
    im = _to_pil(image)
    if codec == "jpeg":
        return _jpeg_compact(im, quality) if compact else _jpeg_save(im, quality, True)
    buf = io.BytesIO()
    if codec == "webp":
        im.save(buf, "WEBP", quality=quality, method=6, lossless=False, exact=False)
        full = buf.getvalue()
        return _webp_compact(full, im.width, im.height) if compact else full
    im.save(buf, "AVIF", quality=quality, speed=6)
    return buf.getvalue()


def decode(data: bytes, codec: str, shape: tuple[int, int, int], compact: bool = True
           ) -> torch.Tensor:
    """Decode bytes from :func:`encode` (trailing bytes allowed) into [C, H, W] in [0, 1].

    Raises :class:`CodecError` when the bytes are not a decodable image of ``shape``.
    """
    _check_codec(codec)
    c, h, w = shape
    if codec == "jpeg" and compact:
        data = _jpeg_expand(data, "L" if c == 1 else "RGB", w, h)
    elif codec == "webp" and compact:
        data = _webp_expand(data, w, h)
    elif codec == "avif":
        data = _isobmff_trim(data)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return _from_pil(im, shape)
    except CodecError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a lost image
        raise CodecError(f"{codec} decode failed: {exc}") from None


@dataclass(frozen=True)
class Encoded:
    """An image encoded to fit a byte budget; ``size`` is the (H, W) the codec coded when the
    transmitter resized the image first (``None``: full size)."""

    codec: str
    quality: int
    data: bytes
    size: tuple[int, int] | None = None

    @property
    def num_bytes(self) -> int:
        return len(self.data)


def encode_to_fit(image: torch.Tensor | np.ndarray, codec: str, max_bytes: int,
                  compact: bool = True) -> Encoded | None:
    """Highest quality whose encoding has at most ``max_bytes`` bytes (binary search over
    the quality setting), or ``None`` when even the lowest quality does not fit.

    .. code-block:: python

        >>> import torch
        >>> from gsc_semantic.baselines import encode_to_fit
        >>> enc = encode_to_fit(torch.rand(3, 64, 64), "jpeg", 2000)
        >>> enc.num_bytes <= 2000
        True
    """
    lo, hi = quality_range(codec)
    if max_bytes <= 0:
        return None
    cache: dict[int, bytes] = {}

    def size(q: int) -> int:
        if q not in cache:
            cache[q] = encode(image, codec, q, compact)
        return len(cache[q])

    if size(lo) > max_bytes:
        return None
    if size(hi) <= max_bytes:
        return Encoded(codec, hi, cache[hi])
    while hi - lo > 1:  # invariant: size(lo) fits, size(hi) does not
        mid = (lo + hi) // 2
        if size(mid) <= max_bytes:
            lo = mid
        else:
            hi = mid
    return Encoded(codec, lo, cache[lo])


# ------------------------------------------------------------------------ budgets
@dataclass(frozen=True)
class LinkBudget:
    """What one image may carry at bandwidth ratio ``rho``.

    ``channel_uses`` = ρ·C·H·W (all overheads counted); ``payload_bits`` the bits they carry
    with the chosen MCS (or at capacity for the bound); ``payload_bytes`` = whole bytes.
    """

    shape: tuple[int, int, int]
    rho: float
    snr_db: float
    channel_uses: float
    bits_per_channel_use: float
    payload_bits: int
    mcs: Mcs | None
    mcs_meets_target: bool
    capacity_bits_per_data_re: float | None = None
    frame: FrameFormat | None = field(default=None, repr=False, compare=False)

    @property
    def payload_bytes(self) -> int:
        return self.payload_bits // 8

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("mcs", "frame")}
        d["shape"] = list(self.shape)
        d["payload_bytes"] = self.payload_bytes
        d["mcs"] = _mcs_dict(self.mcs, self.frame)
        return d


def _mcs_dict(mcs: Mcs | None, frame: FrameFormat | None) -> dict | None:
    if mcs is None:
        return None
    d = {"index": mcs.index, "name": mcs.name, "modulation": mcs.modulation,
         "repetitions": mcs.repetitions}
    if frame is not None:
        d.update(k=frame.k, n=frame.n, code_rate=round(frame.code_rate, 5))
    return d


def _image_shape(shape) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in tuple(shape)[-3:])
    if min(c, h, w) < 1:
        raise ValueError(f"bad image shape {shape}")
    return c, h, w


def link_budget(shape, rho: float, frame: FrameFormat, snr_db: float = float("nan"),
                mcs: Mcs | None = None, mcs_meets_target: bool = True) -> LinkBudget:
    """Payload bits per image of ``shape`` ([..., C, H, W]) at bandwidth ratio ``rho`` on
    ``frame`` (exact frame arithmetic, a fractional frame counts as its share).

    .. code-block:: python

        >>> from gsc_phy.frame import FrameFormat
        >>> from gsc_phy.mcs import mcs_by_index
        >>> from gsc_semantic.baselines import link_budget
        >>> ff = FrameFormat.from_config(mcs_by_index(13).link_config())
        >>> link_budget((3, 64, 64), 1 / 12, ff).payload_bytes
        296
    """
    c, h, w = _image_shape(shape)
    if not rho > 0:
        raise ConfigError(f"the bandwidth ratio must be positive, got {rho}")
    cu = rho * c * h * w
    per_cu = frame.payload_bits_per_frame / frame.channel_uses_per_frame
    bits = int(math.floor(cu * per_cu + 1e-9))
    return LinkBudget((c, h, w), float(rho), float(snr_db), cu, per_cu, bits, mcs,
                      mcs_meets_target, frame=frame)


_CAPACITY_CACHE: dict[tuple, np.ndarray] = {}


@contextlib.contextmanager
def _isolated_sionna_rng(seed: int):
    """Seed Sionna's RNGs for a side computation and give the caller's streams back after."""
    from sionna.phy import config as sionna_config

    names = ("_seed", "_py_rng", "_np_rng", "_torch_rngs")
    saved = {n: getattr(sionna_config, n) for n in names if hasattr(sionna_config, n)}
    cpu_state = torch.default_generator.get_state()
    sionna_config.seed = seed
    try:
        yield
    finally:
        if len(saved) == len(names):
            for n, v in saved.items():
                setattr(sionna_config, n, v)
            torch.default_generator.set_state(cpu_state)


def _channel_gains(cfg: LinkConfig, num_frames: int = 1024) -> np.ndarray:
    """|h|² on the effective subcarriers of ``num_frames`` gsc_phy channel draws (SISO)."""
    key = (cfg.channel, cfg.delay_spread_s, cfg.speed_mps, cfg.carrier_frequency_hz,
           cfg.fft_size, cfg.subcarrier_spacing_hz, cfg.seed, num_frames)
    if key not in _CAPACITY_CACHE:
        from gsc_phy.channels import make_channel

        with _isolated_sionna_rng(cfg.seed), torch.no_grad():
            frame = FrameFormat.from_config(cfg, device="cpu")
            ind = torch.as_tensor(np.asarray(frame.resource_grid.effective_subcarrier_ind))
            sampler = make_channel(cfg, frame.resource_grid, "cpu")
            h = torch.cat([sampler(64) for _ in range(math.ceil(num_frames / 64))])
        g = h[..., ind].abs().square().reshape(-1).double().numpy()
        _CAPACITY_CACHE[key] = g
    return _CAPACITY_CACHE[key]


def ergodic_capacity(snr_db: float, channel: str = "awgn",
                     base_config: LinkConfig | None = None) -> float:
    """Capacity in bits per complex data symbol at average Es/N0 ``snr_db`` (SISO, CSI at
    the receiver): ``log2(1+snr)`` on AWGN, ``E[log2(1+snr|h|²)]`` on fading channels —
    closed form ``e^{1/snr} E1(1/snr) / ln 2`` for Rayleigh, Monte Carlo over gsc_phy channel
    samples (same model and parameters as the link) otherwise.

    .. code-block:: python

        >>> from gsc_semantic.baselines import ergodic_capacity
        >>> round(ergodic_capacity(0.0, "awgn"), 3), round(ergodic_capacity(0.0, "rayleigh"), 3)
        (1.0, 0.86)
    """
    snr = 10.0 ** (snr_db / 10.0)
    if channel == "awgn":
        return math.log2(1.0 + snr)
    if channel == "rayleigh":
        from scipy.special import exp1

        x = 1.0 / snr
        if x > 700:  # e^x E1(x) -> 1/x
            return 1.0 / (x * math.log(2.0))
        return float(math.exp(x) * exp1(x) / math.log(2.0))
    cfg = dataclasses.replace(base_config or LinkConfig(), channel=channel)
    if cfg.num_tx_ant != 1 or cfg.num_rx_ant != 1:
        raise ConfigError("ergodic_capacity is implemented for SISO links only")
    g = _channel_gains(cfg)
    return float(np.mean(np.log2(1.0 + snr * g)))


def capacity_budget(shape, rho: float, snr_db: float, channel: str = "awgn",
                    base_config: LinkConfig | None = None) -> LinkBudget:
    """Bits per image for the separation bound: ρ·C·H·W channel uses × data fraction of the
    gsc frame (data REs / all channel uses) × capacity at ``snr_db``; no CRC, no code loss.

    .. code-block:: python

        >>> from gsc_semantic.baselines import capacity_budget
        >>> capacity_budget((3, 64, 64), 1 / 12, 10.0).payload_bytes
        311
    """
    c, h, w = _image_shape(shape)
    if not rho > 0:
        raise ConfigError(f"the bandwidth ratio must be positive, got {rho}")
    base = base_config or LinkConfig()
    frame = FrameFormat.from_config(dataclasses.replace(base, uncoded=True, modulation="qpsk"))
    data_fraction = (frame.num_streams * frame.data_symbols_per_stream
                     / frame.channel_uses_per_frame)
    cap = ergodic_capacity(snr_db, channel, base)
    cu = rho * c * h * w
    per_cu = data_fraction * cap
    bits = int(math.floor(cu * per_cu + 1e-9))
    return LinkBudget((c, h, w), float(rho), float(snr_db), cu, per_cu, bits, None, True,
                      capacity_bits_per_data_re=cap, frame=None)


# ------------------------------------------------------------------------ results
@dataclass
class ImageRecord:
    """What happened to one image.

    ``bytes`` are the bytes sent (0 when nothing fitted); ``channel_uses`` the channel uses
    those bytes occupy, pro rata of the frames (all overheads counted), ≤ ``channel_uses_budget``
    = ρ·C·H·W; ``blocks``/``blocks_failed`` the transport blocks carrying them.
    """

    method: str
    codec: str | None
    quality: int | None
    bytes: int
    budget_bytes: int
    fits: bool
    delivered: bool
    mcs: str | None
    mcs_meets_target: bool
    channel_uses: float
    channel_uses_budget: float
    snr_db: float
    blocks: int = 0
    blocks_failed: int = 0
    resolution: list[int] | None = None  # [H, W] the codec coded (None: nothing fitted)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class BaselineResult:
    """Reconstructions [N, C, H, W] in [0, 1], one record per image, and the budget.

    ``frames`` / ``channel_uses`` are what the link sent for the whole batch (the last frame's
    unused share included), ``rho_effective`` = ``channel_uses / (N·C·H·W)``.
    """

    images: torch.Tensor
    records: list[ImageRecord]
    budget: LinkBudget
    frames: float
    channel_uses: float
    rho_effective: float

    @property
    def delivered(self) -> torch.Tensor:
        return torch.tensor([r.delivered for r in self.records])

    def to_dict(self) -> dict:
        return {"budget": self.budget.to_dict(), "frames": self.frames,
                "channel_uses": self.channel_uses, "rho_effective": self.rho_effective,
                "delivered_fraction": float(self.delivered.float().mean()) if self.records
                else 0.0, "records": [r.to_dict() for r in self.records]}


def image_key(image: torch.Tensor) -> str:
    """sha256 of an image's 8-bit pixels and shape (memo keys of transmitter searches)."""
    u8 = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy().tobytes()
    return hashlib.sha256(u8 + str(tuple(image.shape)).encode()).hexdigest()


def as_batch(images) -> torch.Tensor:
    """Images as a float32 CPU batch [N, C, H, W] (a single [C, H, W] image gets N = 1)."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    x = x.detach().to("cpu", torch.float32)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, C, H, W] with C = 1 or 3, got {tuple(x.shape)}")
    return x


class _Receiver:
    """Shows the fill image or freezes the previous delivered one."""

    def __init__(self, on_loss: str, fill: float | torch.Tensor) -> None:
        if on_loss not in ON_LOSS:
            raise ConfigError(f"on_loss must be one of {ON_LOSS}, got {on_loss!r}")
        self.on_loss = on_loss
        self.fill = fill
        self.previous: torch.Tensor | None = None

    def blank(self, shape: tuple[int, int, int]) -> torch.Tensor:
        if isinstance(self.fill, torch.Tensor):
            return self.fill.to(torch.float32).expand(shape).clone()
        return torch.full(shape, float(self.fill))

    def lost(self, shape: tuple[int, int, int]) -> torch.Tensor:
        if self.on_loss == "previous" and self.previous is not None:
            if tuple(self.previous.shape) == shape:
                return self.previous.clone()
        return self.blank(shape)

    def got(self, image: torch.Tensor) -> torch.Tensor:
        self.previous = image
        return image


# ------------------------------------------------------------------------ the baselines
_LINKS: dict[tuple[str, str], Link] = {}


def as_transport(value: Any = None, channel: str = "awgn", delay_spread_ns: float = 100.0,
                 seed: int = 0) -> Any:
    """A transport object from what a library caller passed: ``None``/``"sim"`` ->
    :data:`SIMULATED`; ``"loopback"`` -> a new
    :class:`~gsc_semantic.stream_transport.StreamTransport` for ``channel``; any other
    string is a :class:`ConfigError`; an object is returned as is."""
    if value is None or value == "sim":
        return SIMULATED
    if value == "loopback":
        from gsc_semantic.stream_transport import StreamTransport

        return StreamTransport(channel, delay_spread_ns=delay_spread_ns, seed=seed)
    if isinstance(value, str):
        raise ConfigError(f"transport must be a transport object, 'sim' or 'loopback', got "
                          f"{value!r}")
    return value


class AdaptiveLink:
    """A SISO gsc_phy link with genie link adaptation at bandwidth ratio ``rho``: what the
    separation baselines and gsc's own semantic link share (budgets, MCS, transmission).

    :param channel: gsc_phy channel (link adaptation needs a calibrated one: ``awgn``,
        ``tdl-a``, ``rayleigh``).
    :param rho: Bandwidth ratio (complex channel uses, everything counted, / (C·H·W)).
    :param base_config: Other link settings (SISO; estimator, delay spread, ...); the MCS
        sets modulation, k and n.
    :param target_bler: Link-adaptation BLER target.
    :param backoff_db: Link-adaptation margin.
    :param seed: Seeds Sionna's global RNG (channel and noise draws) at construction; the
        same calls in the same order give the same results.
    :param device: Torch device of the link.
    :param transport: Where :meth:`transmit` sends the transport blocks: a transport object
        (:mod:`gsc_semantic.transports`: :data:`~gsc_semantic.transports.SIMULATED`, the
        default, a :class:`~gsc_semantic.stream_transport.StreamTransport` or a
        :class:`~gsc_semantic.sigmf_transport.SigMFTransport`, shared by several links to sum
        their counters); the legacy spellings ``"sim"``/``"loopback"`` are turned into one
        by :func:`as_transport`.
    """

    def __init__(self, channel: str = "awgn", rho: float = 1 / 12, *,
                 base_config: LinkConfig | None = None, target_bler: float = TARGET_BLER,
                 backoff_db: float = 0.0, seed: int = 0, device: str | None = None,
                 frames_per_call: int = 64, transport=None) -> None:
        base = dataclasses.replace(base_config or LinkConfig(), channel=channel, seed=seed)
        if base.num_tx_ant != 1 or base.num_rx_ant != 1:
            raise ConfigError("link adaptation is calibrated for SISO links")
        self.channel = channel
        self.rho = float(rho)
        self.base_config = base
        self.target_bler = target_bler
        self.backoff_db = backoff_db
        self.device = device
        self.frames_per_call = frames_per_call
        self.transport = as_transport(transport, base.channel, base.delay_spread_s * 1e9, seed)
        # the streamed link sends every frame once: no slot aggregation there
        streamed = getattr(self.transport, "streamed", True)
        self.mcs_table = SINGLE_SLOT_TABLE if streamed else MCS_TABLE
        from sionna.phy import config as sionna_config

        sionna_config.seed = seed

    def choose_mcs(self, snr_db: float) -> tuple[Mcs, bool]:
        """Genie link adaptation; the most robust MCS (flagged) when none meets the target."""
        mcs = select_mcs(snr_db, self.channel, self.target_bler, self.base_config.estimator,
                         self.backoff_db, table=self.mcs_table)
        return (mcs, True) if mcs is not None else (self.mcs_table[0], False)

    def link(self, mcs: Mcs) -> Link:
        """The gsc_phy link running ``mcs`` (built once per process and configuration:
        building the LDPC graphs takes a while; links hold no state between calls)."""
        cfg = mcs.link_config(self.base_config)
        key = (repr(cfg), str(self.device))
        if key not in _LINKS:
            _LINKS[key] = Link(cfg, device=self.device)
        return _LINKS[key]

    def budget(self, shape, snr_db: float, mcs: Mcs | int | None = None) -> LinkBudget:
        """Per-image payload at ``snr_db`` (link adaptation unless ``mcs`` is given)."""
        if mcs is None:
            mcs, ok = self.choose_mcs(snr_db)
        else:
            mcs, ok = (mcs if isinstance(mcs, Mcs) else mcs_by_index(mcs)), True
            if mcs not in self.mcs_table:
                raise ConfigError(f"{mcs.name} uses slot aggregation, which the streamed link "
                                  "does not send")
        frame = FrameFormat.from_config(mcs.link_config(self.base_config))
        return link_budget(shape, self.rho, frame, snr_db, mcs, ok)

    @staticmethod
    def empty_stream(n: int, budget: LinkBudget) -> tuple[np.ndarray, int]:
        """Zeroed bit stream of whole frames for ``n`` images, and the frame count."""
        frame = budget.frame
        per_block, cws = frame.payload_bits_per_block, frame.codewords_per_frame
        num_blocks = max(1, math.ceil(n * budget.payload_bits / per_block))
        num_frames = math.ceil(num_blocks / cws)
        return np.zeros(num_frames * cws * per_block, dtype=np.uint8), num_frames

    def transmit(self, stream: np.ndarray, budget: LinkBudget, anything: bool,
                 channel_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Send the bit stream (the PHY scrambles the coded bits, 38.211 7.3.1.1); returns the
        received bits and per-block CRC flags.

        ``channel_seed`` reseeds Sionna's RNGs (channel and noise draws) right before the
        transmission, so one call is one reproducible channel trial; ``None`` continues the
        global random stream.
        """
        per_block = budget.frame.payload_bits_per_block
        if not anything:  # nothing fitted: nothing goes on the air
            return stream, np.zeros(stream.size // per_block, dtype=bool)
        return self.transport.send(stream.astype(np.uint8), budget, channel_seed, sender=self)


class SeparationBaseline(AdaptiveLink):
    """``codec`` + 5G LDPC/QAM/OFDM over gsc_phy, at bandwidth ratio ``rho``.

    :param codec: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    :param on_loss: ``"blank"`` or ``"previous"`` (see the module notes).
    :param fill: Blank image: a gray level or a mean image [C, H, W].
    :param compact: Leave out the codec header parts the receiver knows.
    :param kwargs: :class:`AdaptiveLink` parameters (channel, rho, base_config, ...).

    :input images: [N, C, H, W] in [0, 1] (C = 1 or 3).
    :input snr_db: Average Es/N0 in dB.
    :input mcs: Force an MCS (``Mcs`` or index) instead of link adaptation.
    :input channel_seed: Seed of this call's channel and noise draws (one channel trial);
        ``None`` continues Sionna's global random stream.
    :output: :class:`BaselineResult`.
    """

    def __init__(self, codec: str = "webp", channel: str = "awgn", rho: float = 1 / 12, *,
                 on_loss: str = "blank", fill: float | torch.Tensor = 0.5,
                 compact: bool = True, **kwargs) -> None:
        _check_codec(codec)
        super().__init__(channel, rho, **kwargs)
        self.codec = codec
        self.method = f"{codec}+ldpc"
        self.compact = compact
        self.receiver = _Receiver(on_loss, fill)
        self._encoded: dict[tuple[str, int], Encoded | None] = {}

    def encode_image(self, image: torch.Tensor, num_bytes: int) -> Encoded | None:
        """The codec's best fit of ``image`` in ``num_bytes`` (memoised: the search is
        deterministic and does not depend on the channel draw)."""
        key = (image_key(image), num_bytes)
        if key not in self._encoded:
            self._encoded[key] = self.search(image, num_bytes)
        return self._encoded[key]

    def search(self, image: torch.Tensor, num_bytes: int) -> Encoded | None:
        """The transmitter's choice for one image (here: the highest quality that fits)."""
        return encode_to_fit(image, self.codec, num_bytes, self.compact)

    def decode_image(self, data: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
        """The receiver: bytes that passed every CRC -> [C, H, W]; :class:`CodecError` when
        they do not decode."""
        return decode(data, self.codec, shape, self.compact)

    def __call__(self, images, snr_db: float, mcs: Mcs | int | None = None,
                 channel_seed: int | None = None) -> BaselineResult:
        x = as_batch(images)
        n = x.shape[0]
        shape = tuple(x.shape[1:])
        budget = self.budget(shape, snr_db, mcs)
        frame = budget.frame
        region = budget.payload_bits
        encoded = [self.encode_image(img, budget.payload_bytes) for img in x]

        # one bit stream, image i in bits [i*region, (i+1)*region)
        per_block = frame.payload_bits_per_block
        stream, num_frames = self.empty_stream(n, budget)
        for i, enc in enumerate(encoded):
            if enc is not None:
                b = bytes_to_bits(enc.data)
                stream[i * region:i * region + b.size] = b
        rx_bits, block_ok = self.transmit(stream, budget, any(e is not None for e in encoded),
                                          channel_seed)

        records, out = [], []
        cu_per_bit = 1.0 / budget.bits_per_channel_use
        mcs_label = f"{budget.mcs.name} {budget.mcs.modulation} R={frame.code_rate:.3f}"
        for i, enc in enumerate(encoded):
            start = i * region
            rec = ImageRecord(self.method, self.codec, None, 0, budget.payload_bytes, False,
                              False, mcs_label, budget.mcs_meets_target, 0.0,
                              budget.channel_uses, float(snr_db))
            img = None
            if enc is not None:
                nbits = 8 * enc.num_bytes
                blocks = block_ok[start // per_block:(start + nbits - 1) // per_block + 1]
                rec.codec, rec.quality, rec.bytes, rec.fits = self.codec, enc.quality, \
                    enc.num_bytes, True
                rec.channel_uses = nbits * cu_per_bit
                rec.resolution = list(enc.size or shape[1:])
                rec.blocks, rec.blocks_failed = int(blocks.size), int((~blocks).sum())
                if rec.blocks_failed == 0:
                    data = bits_to_bytes(rx_bits[start:start + 8 * budget.payload_bytes])
                    try:
                        img = self.decode_image(data, shape)
                        rec.delivered = True
                    except CodecError:
                        img = None
            out.append(self.receiver.got(img) if img is not None
                       else self.receiver.lost(shape))
            records.append(rec)
        cu_total = num_frames * frame.channel_uses_per_frame
        return BaselineResult(torch.stack(out), records, budget, num_frames, float(cu_total),
                              bandwidth_ratio(cu_total, *shape) / n)


class CapacityBound:
    """Capacity-achieving separation bound (JPEG/WebP at capacity).

    Every image gets :func:`capacity_budget` bits (ergodic capacity of ``channel`` at the
    average SNR, the gsc frame's pilot/guard/CP overhead kept) and is sent error-free with
    whichever of ``codecs`` fits with the lowest MSE. An upper bound for any codec+channel
    code separation scheme with these codecs; not achievable by a real code.

    :input images: [N, C, H, W] in [0, 1].
    :input snr_db: Average Es/N0 in dB.
    :output: :class:`BaselineResult` (``mcs`` is ``None``; every fitted image is delivered).

    .. code-block:: python

        >>> import torch
        >>> from gsc_semantic.baselines import CapacityBound
        >>> out = CapacityBound(rho=1 / 12)(torch.rand(1, 3, 64, 64), snr_db=20.0)
        >>> out.records[0].delivered
        True
    """

    method = "separation-bound:jpeg/webp@capacity"

    def __init__(self, codecs: tuple[str, ...] = ("jpeg", "webp"), channel: str = "awgn",
                 rho: float = 1 / 12, *, base_config: LinkConfig | None = None,
                 on_loss: str = "blank", fill: float | torch.Tensor = 0.5,
                 compact: bool = True, seed: int = 0) -> None:
        for c in codecs:
            _check_codec(c)
        self.codecs = tuple(codecs)
        self.channel = channel
        self.rho = float(rho)
        self.base_config = dataclasses.replace(base_config or LinkConfig(), channel=channel,
                                               seed=seed)
        self.compact = compact
        self.receiver = _Receiver(on_loss, fill)

    def budget(self, shape, snr_db: float) -> LinkBudget:
        return capacity_budget(shape, self.rho, snr_db, self.channel, self.base_config)

    def __call__(self, images, snr_db: float) -> BaselineResult:
        x = as_batch(images)
        shape = tuple(x.shape[1:])
        budget = self.budget(shape, snr_db)
        records, out = [], []
        for img in x:
            best: tuple[float, Encoded, torch.Tensor] | None = None
            for codec in self.codecs:
                enc = encode_to_fit(img, codec, budget.payload_bytes, self.compact)
                if enc is None:
                    continue
                rec_img = decode(enc.data, codec, shape, self.compact)
                mse = float((rec_img - img).square().mean())
                if best is None or mse < best[0]:
                    best = (mse, enc, rec_img)
            rec = ImageRecord(self.method, None, None, 0, budget.payload_bytes, False, False,
                              None, True, 0.0, budget.channel_uses, float(snr_db))
            if best is not None:
                _, enc, rec_img = best
                rec.codec, rec.quality, rec.bytes = enc.codec, enc.quality, enc.num_bytes
                rec.fits = rec.delivered = True
                rec.channel_uses = 8 * enc.num_bytes / budget.bits_per_channel_use
                rec.resolution = list(shape[1:])
                out.append(self.receiver.got(rec_img))
            else:
                out.append(self.receiver.lost(shape))
            records.append(rec)
        cu_total = budget.channel_uses * x.shape[0]
        return BaselineResult(torch.stack(out), records, budget, cu_total / _frame_cu(
            self.base_config), cu_total, self.rho)


def _frame_cu(cfg: LinkConfig) -> int:
    return FrameFormat.from_config(dataclasses.replace(cfg, uncoded=True)).channel_uses_per_frame
