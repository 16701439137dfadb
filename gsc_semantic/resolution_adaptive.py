"""Resolution-adaptive separation baselines: ``jpeg-ra``, ``webp-ra``, ``avif-ra``.

A careful conventional engineer does not send a full-size file that cannot fit, and does not
send a blurry full-size file when a sharper thumbnail would look better: the transmitter
**downscales before encoding**. For every image and byte budget it tries each resolution from
the full size down to 1/16 per side in steps of √2 (:data:`SCALE_STEPS`), Lanczos-downscales,
takes the codec's highest quality that fits (:func:`gsc_semantic.baselines.encode_to_fit`),
and keeps the resolution whose reconstruction has the lowest **MSE against the original** —
a criterion a real encoder has. No evaluation network (EfficientNet-Lite2 distance, the
Fréchet features, the consistency classifier) is consulted.

**On the wire.** One header byte, the index of the chosen scale (the receiver knows the full
size, so it knows the coded size), then the compact codec payload of
:func:`gsc_semantic.baselines.encode` (headers the receiver knows stripped). The header byte
counts against the budget. The receiver decodes at the coded size and upsamples with Lanczos
to the full size; a lost transport block loses the image (shown as the fill image), as for
the full-size baselines: same link, same MCS table, same packing
(:class:`gsc_semantic.baselines.SeparationBaseline`).

Example::

    >>> import torch
    >>> from gsc_semantic.resolution_adaptive import ResolutionAdaptiveBaseline
    >>> base = ResolutionAdaptiveBaseline("webp", channel="awgn", rho=1 / 48)
    >>> out = base(torch.rand(1, 3, 128, 128), snr_db=10.0)
    >>> out.records[0].bytes <= out.records[0].budget_bytes
    True
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .baselines import CodecError, Encoded, SeparationBaseline, decode, encode_to_fit

__all__ = ["SCALE_STEPS", "HEADER_BYTES", "ADAPTIVE_SUFFIX", "CODEC_BASELINES", "scaled_size",
           "resize_lanczos", "encode_adaptive", "decode_adaptive", "ResolutionAdaptiveBaseline",
           "codec_baseline"]

#: scales per side the transmitter tries: 1, 1/√2, 1/2, ... 1/16
SCALE_STEPS: tuple[float, ...] = tuple(2.0 ** (-k / 2) for k in range(9))
#: the chosen scale's index, sent before the payload
HEADER_BYTES = 1
#: method-name suffix of the adaptive baselines (``webp-ra``)
ADAPTIVE_SUFFIX = "-ra"
#: every codec baseline by name: full size, then resolution-adaptive
CODEC_BASELINES = ("jpeg", "webp", "avif", "jpeg-ra", "webp-ra", "avif-ra")


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The coded (H, W) at ``scale`` of a full (``height``, ``width``) image (>= 1 px).

    >>> scaled_size(256, 256, 2 ** -0.5), scaled_size(256, 192, 1 / 16)
    ((181, 181), (16, 12))
    """
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_lanczos(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[C, H, W] in [0, 1] -> [C, *size], Lanczos on 8-bit samples (Pillow); what a
    conventional transmitter downscales and a receiver upsamples with."""
    c = image.shape[0]
    u8 = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    arr = u8[0].numpy() if c == 1 else u8.permute(1, 2, 0).numpy()
    out = np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.LANCZOS))
    t = torch.from_numpy(out.copy()).float() / 255.0
    return t[None] if c == 1 else t.permute(2, 0, 1).contiguous()


def _sizes(height: int, width: int) -> list[tuple[int, tuple[int, int]]]:
    """(scale index, coded size) for every distinct size of :data:`SCALE_STEPS`."""
    seen, out = set(), []
    for k, s in enumerate(SCALE_STEPS):
        size = scaled_size(height, width, s)
        if size not in seen:
            seen.add(size)
            out.append((k, size))
    return out


def encode_adaptive(image: torch.Tensor, codec: str, max_bytes: int, compact: bool = True
                    ) -> Encoded | None:
    """The resolution and quality with the lowest MSE against ``image`` [C, H, W] whose
    header + payload fit ``max_bytes``; ``None`` when no resolution fits.

    :output: :class:`~gsc_semantic.baselines.Encoded` with ``data`` = header byte + payload
        and ``size`` = the coded (H, W).

    >>> import torch
    >>> enc = encode_adaptive(torch.rand(3, 64, 64), "jpeg", 300)
    >>> enc.num_bytes <= 300 and enc.size[0] < 64
    True
    """
    c, h, w = image.shape
    best: tuple[float, Encoded] | None = None
    for k, size in _sizes(h, w):
        small = image if size == (h, w) else resize_lanczos(image, size)
        enc = encode_to_fit(small, codec, max_bytes - HEADER_BYTES, compact)
        if enc is None:
            continue
        shown = resize_lanczos(decode(enc.data, codec, (c, *size), compact), (h, w)) \
            if size != (h, w) else decode(enc.data, codec, (c, h, w), compact)
        mse = float((shown - image.detach().cpu().float()).square().mean())
        if best is None or mse < best[0]:
            best = (mse, Encoded(codec, enc.quality, bytes([k]) + enc.data, size))
    return None if best is None else best[1]


def decode_adaptive(data: bytes, codec: str, shape: tuple[int, int, int], compact: bool = True
                    ) -> torch.Tensor:
    """Bytes from :func:`encode_adaptive` (trailing bytes allowed) -> [C, H, W] at full size.

    Raises :class:`~gsc_semantic.baselines.CodecError` on a bad scale index or payload."""
    c, h, w = shape
    if not data or data[0] >= len(SCALE_STEPS):
        raise CodecError(f"{codec}{ADAPTIVE_SUFFIX}: bad scale index "
                         f"{data[0] if data else None}")
    size = scaled_size(h, w, SCALE_STEPS[data[0]])
    small = decode(data[HEADER_BYTES:], codec, (c, *size), compact)
    return small if size == (h, w) else resize_lanczos(small, (h, w))


class ResolutionAdaptiveBaseline(SeparationBaseline):
    """``codec`` at the resolution that fits best (lowest MSE) + 5G LDPC/QAM/OFDM.

    Same parameters, inputs and output as
    :class:`~gsc_semantic.baselines.SeparationBaseline`; each record's ``resolution`` is the
    coded [H, W].
    """

    def __init__(self, codec: str = "webp", channel: str = "awgn", rho: float = 1 / 12,
                 **kwargs) -> None:
        super().__init__(codec, channel, rho, **kwargs)
        self.method = f"{codec}{ADAPTIVE_SUFFIX}+ldpc"

    def search(self, image: torch.Tensor, num_bytes: int) -> Encoded | None:
        return encode_adaptive(image, self.codec, num_bytes, self.compact)

    def decode_image(self, data: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
        return decode_adaptive(data, self.codec, shape, self.compact)


def codec_baseline(name: str, channel: str = "awgn", rho: float = 1 / 12,
                   **kwargs) -> SeparationBaseline:
    """The baseline called ``name`` (one of :data:`CODEC_BASELINES`): ``webp`` is full-size
    WebP, ``webp-ra`` the resolution-adaptive one; ``kwargs`` as for
    :class:`~gsc_semantic.baselines.SeparationBaseline`."""
    if name not in CODEC_BASELINES:
        raise ValueError(f"unknown codec baseline {name!r}; choose from "
                         f"{', '.join(CODEC_BASELINES)}")
    if name.endswith(ADAPTIVE_SUFFIX):
        return ResolutionAdaptiveBaseline(name.removesuffix(ADAPTIVE_SUFFIX), channel, rho,
                                          **kwargs)
    return SeparationBaseline(name, channel, rho, **kwargs)
