"""Separation baselines (codec + 5G LDPC over gsc_phy) and the capacity bound."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gsc_phy.frame import CRC_BITS, FrameFormat, bandwidth_ratio
from gsc_phy.mcs import MCS_TABLE, mcs_by_index, select_mcs
from gsc_semantic.baselines import (
    CapacityBound,
    CodecError,
    SeparationBaseline,
    available_codecs,
    capacity_budget,
    decode,
    encode,
    encode_to_fit,
    ergodic_capacity,
    link_budget,
)

CODECS = [c for c in ("jpeg", "webp") if c in available_codecs()]


def smooth_images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Natural-looking test images: random low-frequency fields plus an edge."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    x[..., h // 3:h // 2, w // 4:] += 0.3
    return x.clamp(0, 1)


# ----------------------------------------------------------------------- budget arithmetic
@pytest.mark.parametrize("index", [1, 7, 13, 27])
@pytest.mark.parametrize("shape,rho", [((1, 28, 28), 1 / 48), ((3, 64, 64), 1 / 12),
                                       ((3, 32, 32), 0.37)])
def test_budget_matches_frame_format(index, shape, rho):
    mcs = mcs_by_index(index)
    ff = FrameFormat.from_config(mcs.link_config())
    b = link_budget(shape, rho, ff)
    cu = rho * math.prod(shape)
    assert b.channel_uses == pytest.approx(cu)
    # channel uses x data fraction x bits/symbol x code rate, minus the per-block CRC
    data_fraction = ff.num_streams * ff.data_symbols_per_stream / ff.channel_uses_per_frame
    per_cu = data_fraction * ff.bits_per_symbol * (ff.k - CRC_BITS) / ff.n
    assert b.payload_bits == math.floor(cu * per_cu + 1e-9)
    assert b.payload_bits == (cu * ff.payload_bits_per_frame) // ff.channel_uses_per_frame
    assert b.payload_bytes == b.payload_bits // 8


@pytest.mark.parametrize("n", [1, 7, 200])
def test_rho_from_bandwidth_ratio_matches_request(n):
    rho, shape = 1 / 12, (3, 64, 64)
    ff = FrameFormat.from_config(mcs_by_index(9).link_config())
    b = link_budget(shape, rho, ff)
    frames = math.ceil(math.ceil(n * b.payload_bits / ff.payload_bits_per_block)
                       / ff.codewords_per_frame)
    measured = bandwidth_ratio(frames * ff.channel_uses_per_frame, *shape) / n
    # never more than the request, except for the unused share of the last frame
    slack = ff.channel_uses_per_frame / (n * math.prod(shape))
    assert rho - 1 / math.prod(shape) <= measured <= rho + slack


def test_result_reports_the_channel_uses_it_sent():
    x = smooth_images(3, 1, 28, 28)
    base = SeparationBaseline("webp", rho=4)
    out = base(x, snr_db=20.0, mcs=1)
    ff = out.budget.frame
    assert out.channel_uses == out.frames * ff.channel_uses_per_frame
    assert out.rho_effective == pytest.approx(bandwidth_ratio(out.channel_uses, 1, 28, 28) / 3)
    for r in out.records:
        assert r.fits and r.delivered
        assert 0 < r.channel_uses <= r.channel_uses_budget == pytest.approx(4 * 784)


# ----------------------------------------------------------------------- codecs
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("c", [1, 3])
def test_compact_codec_matches_plain_file_and_ignores_trailing_bytes(codec, c):
    img = smooth_images(1, c, 40, 24)[0]
    rng = np.random.default_rng(0)
    for q in (1, 40, 90):
        compact = encode(img, codec, q, compact=True)
        plain = encode(img, codec, q, compact=False)
        assert len(compact) < len(plain)
        ref = decode(plain, codec, (c, 40, 24), compact=False)
        with Image.open(io.BytesIO(plain)) as im:
            assert "exif" not in im.info and "icc_profile" not in im.info
        for tail in (b"", bytes(5), rng.integers(0, 256, 37, dtype=np.uint8).tobytes()):
            assert torch.equal(decode(compact + tail, codec, (c, 40, 24)), ref)
    with pytest.raises(CodecError):
        decode(b"\x05" + bytes(30), codec, (c, 40, 24))


@pytest.mark.skipif("avif" not in available_codecs(), reason="Pillow without AVIF")
def test_avif_is_sent_as_a_whole_file_and_trimmed_at_the_receiver():
    img = smooth_images(1, 3, 32, 32)[0]
    data = encode(img, "avif", 30)
    assert data[4:8] == b"ftyp" and data == encode(img, "avif", 30, compact=False)
    ref = decode(data, "avif", (3, 32, 32))
    assert torch.equal(decode(data + bytes(11) + b"\xff" * 5, "avif", (3, 32, 32)), ref)


@pytest.mark.parametrize("codec", CODECS)
def test_encode_to_fit_respects_the_budget(codec):
    img = smooth_images(1, 3, 64, 64)[0]
    sizes = [len(encode(img, codec, q)) for q in (0 if codec == "webp" else 1, 100)]
    assert encode_to_fit(img, codec, sizes[0] - 1) is None
    assert encode_to_fit(img, codec, sizes[1] + 10).quality == 100
    mid = (sizes[0] + sizes[1]) // 2
    enc = encode_to_fit(img, codec, mid)
    assert enc.num_bytes <= mid and len(encode(img, codec, enc.quality + 1)) > mid


# ----------------------------------------------------------------------- the link
@pytest.mark.parametrize("codec", CODECS)
def test_high_snr_awgn_delivers_bit_exact_codec_output(codec):
    x = smooth_images(3, 3, 48, 48)
    base = SeparationBaseline(codec, "awgn", rho=1 / 4, seed=1, backoff_db=3.0)
    out = base(x, snr_db=12.0)  # 16-QAM with 3 dB margin: no block error
    assert out.budget.mcs == select_mcs(9.0, "awgn") and out.budget.mcs_meets_target
    for i, r in enumerate(out.records):
        assert r.fits and r.delivered and r.blocks_failed == 0 and r.bytes <= r.budget_bytes
        enc = encode_to_fit(x[i], codec, out.budget.payload_bytes)
        assert (r.quality, r.bytes) == (enc.quality, enc.num_bytes)
        assert torch.equal(out.images[i], decode(enc.data, codec, (3, 48, 48)))


def test_low_snr_loses_images_and_shows_the_blank():
    x = smooth_images(3, 1, 28, 28)
    base = SeparationBaseline("webp", "awgn", rho=32, fill=0.25)
    out = base(x, snr_db=-16.0)  # below every threshold: most robust MCS (1x8), flagged
    assert out.budget.mcs == MCS_TABLE[0] and not out.budget.mcs_meets_target
    assert all(r.fits and not r.delivered and r.blocks_failed > 0 for r in out.records)
    assert torch.all(out.images == 0.25)


def test_previous_frame_is_shown_after_a_loss():
    x = smooth_images(2, 1, 28, 28)
    base = SeparationBaseline("jpeg", "awgn", rho=4, on_loss="previous")
    good = base(x[:1], snr_db=20.0, mcs=1)
    assert good.records[0].delivered
    lost = base(x[1:], snr_db=-10.0, mcs=1)
    assert not lost.records[0].delivered
    assert torch.equal(lost.images[0], good.images[0])


def test_budget_too_small_for_any_codec_is_not_delivered():
    x = smooth_images(5, 1, 28, 28)
    base = SeparationBaseline("jpeg", "awgn", rho=1 / 48)
    out = base(x, snr_db=0.0)
    assert out.budget.payload_bytes < 30
    for r in out.records:
        assert (r.fits, r.delivered, r.bytes, r.quality, r.channel_uses) == (
            False, False, 0, None, 0.0)
    assert torch.all(out.images == 0.5)
    bound = CapacityBound(rho=1 / 48)(x, snr_db=0.0)
    assert not any(r.delivered for r in bound.records)


# ----------------------------------------------------------------------- capacity bound
def test_ergodic_capacity_references():
    assert ergodic_capacity(10.0, "awgn") == pytest.approx(math.log2(11.0))
    # Rayleigh closed form against Monte Carlo
    rng = np.random.default_rng(0)
    g = rng.exponential(size=200_000)
    assert ergodic_capacity(10.0, "rayleigh") == pytest.approx(np.mean(np.log2(1 + 10 * g)),
                                                               abs=0.01)
    # TDL-A (frequency-selective Rayleigh taps, unit energy): same marginal, close to Rayleigh
    assert ergodic_capacity(10.0, "tdl-a") == pytest.approx(
        ergodic_capacity(10.0, "rayleigh"), abs=0.08)
    assert ergodic_capacity(10.0, "rayleigh") < ergodic_capacity(10.0, "awgn")


@pytest.mark.parametrize("channel", ["awgn", "tdl-a"])
def test_capacity_bound_never_has_fewer_bits_than_the_link(channel):
    base = SeparationBaseline("webp", channel, rho=1 / 12)
    compared = 0
    for snr in np.arange(-10.0, 42.0, 1.0):
        for shape in ((1, 28, 28), (3, 64, 64)):
            link = base.budget(shape, float(snr))
            cap = capacity_budget(shape, 1 / 12, float(snr), channel)
            if link.mcs_meets_target:
                assert cap.payload_bits >= link.payload_bits
                compared += 1
    assert compared > 40


def test_capacity_bound_delivers_the_best_codec_within_budget():
    x = smooth_images(3, 3, 64, 64)
    out = CapacityBound(("jpeg", "webp"), rho=1 / 12)(x, snr_db=15.0)
    assert out.budget.mcs is None and out.rho_effective == pytest.approx(1 / 12)
    for i, r in enumerate(out.records):
        assert r.delivered and r.bytes <= r.budget_bytes
        errs = {}
        for codec in ("jpeg", "webp"):
            enc = encode_to_fit(x[i], codec, out.budget.payload_bytes)
            if enc is not None:
                errs[codec] = float((decode(enc.data, codec, (3, 64, 64)) - x[i]).square().mean())
        assert r.codec == min(errs, key=errs.get)
