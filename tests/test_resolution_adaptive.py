"""Resolution-adaptive JPEG/WebP/AVIF baselines: the transmitter's search (budget, full size
when it fits well, the smallest thumbnail at tiny budgets, MSE only), the wire format and the
link (same budget and MCS as the full-size baselines, resolution in the records)."""

import ast
import os
import subprocess
import sys

import pytest
import torch

from gsc_semantic.baselines import (
    CodecError,
    SeparationBaseline,
    available_codecs,
    encode,
    encode_to_fit,
    quality_range,
)
from gsc_semantic.resolution_adaptive import (
    SCALE_STEPS,
    ResolutionAdaptiveBaseline,
    decode_adaptive,
    encode_adaptive,
    resize_lanczos,
    scaled_size,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CODECS = [c for c in ("jpeg", "webp", "avif") if c in available_codecs()]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _photo(h: int = 128, w: int = 128, seed: int = 0) -> torch.Tensor:
    """Texture and edges at several scales, so resolution matters."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.5 + 0.3 * torch.sin(2 * torch.pi * f * (xx + k * yy))
                       for k, f in enumerate((3.0, 7.0, 17.0))])
    return (img + 0.05 * torch.randn(3, h, w, generator=g)).clamp(0, 1)


def test_scales_run_from_full_size_to_a_sixteenth_in_sqrt2_steps():
    assert SCALE_STEPS[0] == 1.0 and SCALE_STEPS[-1] == pytest.approx(1 / 16)
    ratios = [a / b for a, b in zip(SCALE_STEPS, SCALE_STEPS[1:], strict=False)]
    assert all(r <= 2 ** 0.5 + 1e-9 for r in ratios)
    assert [scaled_size(256, 256, s)[0] for s in SCALE_STEPS] == [256, 181, 128, 91, 64, 45,
                                                                  32, 23, 16]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("budget", [20, 60, 200, 700, 3000])
def test_search_never_exceeds_the_budget_and_round_trips(codec, budget):
    img = _photo()
    enc = encode_adaptive(img, codec, budget)
    if enc is None:  # then no resolution fits even at the lowest quality
        small = resize_lanczos(img, scaled_size(128, 128, SCALE_STEPS[-1]))
        assert len(encode(small, codec, quality_range(codec)[0])) + 1 > budget
        return
    assert enc.num_bytes <= budget
    out = decode_adaptive(enc.data + b"\0" * 7, codec, (3, 128, 128))  # trailing fill is fine
    assert out.shape == (3, 128, 128)
    assert tuple(enc.size) == scaled_size(128, 128, SCALE_STEPS[enc.data[0]])


@pytest.mark.parametrize("codec", CODECS)
def test_full_size_when_it_fits_at_high_quality(codec):
    img = _photo()
    full = encode(img, codec, quality_range(codec)[1])
    enc = encode_adaptive(img, codec, len(full) + 1)
    assert enc.size == (128, 128) and enc.quality == quality_range(codec)[1]


@pytest.mark.parametrize("codec", CODECS)
def test_tiny_budget_gets_the_smallest_thumbnail(codec):
    img = _photo(256, 256)
    lowest = {}  # coded size -> bytes of its lowest quality (+ the header byte)
    for s in SCALE_STEPS:
        size = scaled_size(256, 256, s)
        small = img if size == (256, 256) else resize_lanczos(img, size)
        lowest[size] = len(encode(small, codec, quality_range(codec)[0])) + 1
    smallest = scaled_size(256, 256, SCALE_STEPS[-1])
    enc = encode_adaptive(img, codec, lowest[smallest])
    assert enc is not None and enc.num_bytes <= lowest[smallest]
    assert enc.size[0] <= 2 * smallest[0]  # the thumbnail end of the ladder
    assert lowest[enc.size] <= lowest[smallest]
    assert encode_adaptive(img, codec, min(lowest.values()) - 1) is None  # nothing fits


def test_the_choice_is_the_lowest_mse_over_resolutions():
    img, budget = _photo(), 400
    enc = encode_adaptive(img, "jpeg", budget)
    shown = decode_adaptive(enc.data, "jpeg", (3, 128, 128))
    best = float((shown - img).square().mean())
    for s in SCALE_STEPS:
        size = scaled_size(128, 128, s)
        small = img if size == (128, 128) else resize_lanczos(img, size)
        alt = encode_to_fit(small, "jpeg", budget - 1)
        if alt is not None:
            data = bytes([SCALE_STEPS.index(s)]) + alt.data
            mse = float((decode_adaptive(data, "jpeg", (3, 128, 128)) - img).square().mean())
            assert best <= mse + 1e-9


def test_bad_scale_index_is_a_codec_error():
    with pytest.raises(CodecError):
        decode_adaptive(bytes([200]) + b"\0" * 40, "webp", (3, 64, 64))
    with pytest.raises(CodecError):
        decode_adaptive(b"", "webp", (3, 64, 64))


@pytest.mark.parametrize("module", ["resolution_adaptive", "photo_layers", "baselines"])
def test_no_evaluation_network_is_imported(module):
    """Transmitters choose by MSE only (the README's rule, gsc's layers included): the
    module imports no metric or classifier, and encoding with it loads none of them."""
    path = os.path.join(ROOT, "gsc_semantic", f"{module}.py")
    tree = ast.parse(open(path).read())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(k in m for m in names for k in ("metrics", "efficientnet", "classifier"))
    code = ("import sys, torch; from gsc_semantic.resolution_adaptive import encode_adaptive;"
            "from gsc_semantic.photo_layers import encode_layers;"
            "encode_adaptive(torch.rand(3, 64, 64), 'webp', 300);"
            "encode_layers(torch.rand(3, 64, 64), 2000);"
            "bad = [m for m in sys.modules if m.startswith('efficientnet') or m in ("
            "'gsc_semantic.metrics', 'gsc_semantic.efficientnet_lite', "
            "'gsc_semantic.classifier')]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_through_the_link_like_the_full_size_baseline():
    imgs = torch.stack([_photo(seed=s) for s in range(3)])
    ra = ResolutionAdaptiveBaseline("webp", "awgn", 1 / 48, fill=0.5)
    full = SeparationBaseline("webp", "awgn", 1 / 48, fill=0.5)
    a, b = ra(imgs, snr_db=5.0, channel_seed=1), full(imgs, snr_db=5.0, channel_seed=1)
    assert a.budget.payload_bits == b.budget.payload_bits and a.budget.mcs == b.budget.mcs
    assert a.records[0].method == "webp-ra+ldpc"
    for r in a.records:
        assert r.bytes <= r.budget_bytes and r.fits and r.delivered
        assert r.resolution is not None and r.resolution[0] < 128
    assert not any(r.fits for r in b.records)  # full size does not fit 5 dB's budget
    assert float((a.images - imgs).square().mean()) < float((b.images - imgs).square().mean())
