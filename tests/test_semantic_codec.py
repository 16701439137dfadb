"""Semantic codec: layered quantiser, encoder -> bits -> channel -> decoder, training step,
checkpoint persistence and integrity, and graceful degradation of the shipped checkpoints."""

import itertools
import json
import os

import pytest
import torch

from gsc_semantic import codec as C
from gsc_semantic.codec import PRESETS, SemanticCodec, default_checkpoint, write_manifest
from gsc_semantic.decoder import CheckpointError
from gsc_semantic.metrics import psnr
from gsc_semantic.quantizer import (
    LayeredBits,
    LayeredQuantizer,
    LayerSpec,
    bsc_llr,
    erasure_mask_from_prefix,
    flip_bits,
)
from gsc_semantic.train import channel_augment, tiny_config, train_codec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- quantiser --------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 2, 3])
def test_quantizer_round_trip_exact(bits):
    q = LayeredQuantizer([LayerSpec("z1", 5, bits), LayerSpec("z2", 7, bits)])
    levels = 2 ** bits
    g = torch.Generator().manual_seed(bits)
    idx = [torch.randint(0, levels, (9, d), generator=g) for d in (5, 7)]
    vals = [LayeredQuantizer.level(i, bits) for i in idx]
    lb = q.quantize(vals)
    assert lb.bits_per_layer == [5 * bits, 7 * bits] == q.bits_per_layer
    assert all(t.dtype == torch.uint8 and set(t.unique().tolist()) <= {0, 1} for t in lb.layers)
    back, mask = q.dequantize(lb)
    assert not mask.any()
    for v, b in zip(vals, back, strict=True):
        assert torch.equal(v, b)
    # arbitrary values land within half a step; flat bits split back into the same layers
    x = [torch.rand(9, d, generator=g) * 2 - 1 for d in (5, 7)]
    back, _ = q.dequantize(q.quantize(x).flat())
    for v, b in zip(x, back, strict=True):
        assert (v - b).abs().max() <= 1.0 / levels + 1e-6


def test_natural_binary_msb_first():
    q = LayeredQuantizer([LayerSpec("z1", 1, 3)])
    for k in range(8):
        v = LayeredQuantizer.level(torch.tensor([[k]]), 3)
        assert q.quantize([v]).layers[0][0].tolist() == [(k >> 2) & 1, (k >> 1) & 1, k & 1]


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_single_bit_error_moves_by_its_weight(bits):
    """A flipped bit at position j (MSB first) moves the value by exactly 2**(bits-j) / 2**bits,
    never more: the natural-binary guarantee."""
    q = LayeredQuantizer([LayerSpec("z1", 1, bits)])
    step = 2.0 / 2 ** bits
    for k, j in itertools.product(range(2 ** bits), range(bits)):
        v = LayeredQuantizer.level(torch.tensor([[k]]), bits)
        b = q.quantize([v]).layers[0].clone()
        b[0, j] ^= 1
        moved = (q.dequantize([b])[0][0] - v).abs().item()
        assert moved == pytest.approx(step * 2 ** (bits - 1 - j))
        assert moved <= 1.0 + 1e-6


def test_soft_dequantisation_is_the_posterior_mean():
    bits = 3
    q = LayeredQuantizer([LayerSpec("z1", 4, bits)])
    g = torch.Generator().manual_seed(0)
    llr = torch.randn(2, 4 * bits, generator=g) * 2
    vals, _ = q.dequantize([llr])
    p1 = torch.sigmoid(llr).view(2, 4, bits)
    ref = torch.zeros(2, 4)
    for k in range(2 ** bits):
        pattern = torch.tensor([(k >> (bits - 1 - j)) & 1 for j in range(bits)]).float()
        prob = (p1 * pattern + (1 - p1) * (1 - pattern)).prod(-1)
        ref += prob * LayeredQuantizer.level(torch.tensor(k), bits)
    assert torch.allclose(vals[0], ref, atol=1e-6)
    # confident LLRs reproduce the hard decision; zero LLRs give the prior mean 0
    hard = (llr > 0).to(torch.uint8)
    assert torch.allclose(q.dequantize([(2 * hard.float() - 1) * 40])[0][0],
                          q.dequantize([hard])[0][0])
    assert torch.equal(q.dequantize([torch.zeros(1, 4 * bits)])[0][0], torch.zeros(1, 4))


def test_erasures_and_budget():
    q = LayeredQuantizer([LayerSpec("z1", 8, 2, "semantic"), LayerSpec("z2", 16, 2),
                          LayerSpec("z3", 32, 2)])
    lb = q.quantize([torch.ones(3, 8), torch.ones(3, 16), torch.ones(3, 32)])
    mask = torch.tensor([[False, True, False], [False, False, True], [True, True, True]])
    vals, m = q.dequantize(lb, mask)
    assert torch.equal(m, mask)
    for i in range(3):
        for j in range(3):
            assert (vals[j][i] == 0).all() == bool(mask[i, j])
    vals, m = q.dequantize(lb.layers[:2])                  # z3 never arrived
    assert m[:, 2].all() and not m[:, :2].any() and (vals[2] == 0).all()
    assert erasure_mask_from_prefix(2, 3, 1).tolist() == [[False, True, True]] * 2
    assert [q.layers_for_budget(b) for b in (0, 15, 16, 47, 48, 112, 10**6)] == [0, 0, 1, 1,
                                                                                 2, 3, 3]
    with pytest.raises(ValueError, match="whole layers"):
        LayeredBits.from_flat(lb.flat()[:, :20], q.bits_per_layer)
    with pytest.raises(ValueError, match="0/1"):
        q.dequantize([lb.layers[0] * 2])


def test_bsc_helpers():
    g = torch.Generator().manual_seed(1)
    b = torch.zeros(4, 20000, dtype=torch.uint8)
    ber = torch.tensor([[0.0], [0.01], [0.1], [0.5]])
    rate = flip_bits(b, ber, g).float().mean(1)
    assert rate[0] == 0 and abs(rate[1] - 0.01) < 0.004 and abs(rate[2] - 0.1) < 0.01
    llr = bsc_llr(torch.tensor([[1, 0]], dtype=torch.uint8), 0.01)
    assert llr[0, 0] > 4 and llr[0, 1] < -4


# ---- codec pipeline (tiny, untrained) -----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_codec():
    torch.manual_seed(0)
    return SemanticCodec(tiny_config("fmnist")).eval()


def test_encode_channel_decode_shapes_and_ranges(tiny_codec):
    codec = tiny_codec
    x = torch.rand(3, 1, 28, 28)
    lb = codec.encode(x)
    assert lb.bits_per_layer == codec.bits_per_layer == [4, 4, 8, 10, 12, 28, 58, 128]
    g = torch.Generator().manual_seed(0)
    noisy = LayeredBits([flip_bits(t, 0.05, g) for t in lb.layers])
    llrs = [bsc_llr(t, 0.05) for t in noisy.layers]
    mask = torch.tensor([[False] * 8, [False] * 2 + [True] * 6, [True] * 8])
    for layers, kw in [(lb, {}), (noisy, {"erasure_mask": mask}), (llrs, {}),
                       (noisy.layers[:2], {}), (noisy.flat(3), {"sampler": "ddim"}),
                       (lb, {"sampler": "mse"}), (lb, {"strength": 0.5}),
                       (llrs, {"sampler": "ddim", "strength": 0.3})]:
        y = codec.decode(layers, steps=4, seed=3, **kw)
        assert y.shape == (3, 1, 28, 28) and y.dtype == torch.float32
        assert y.min() >= 0 and y.max() <= 1 and torch.isfinite(y).all()
    a, b = codec.decode(lb, steps=4, seed=1), codec.decode(lb, steps=4, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, codec.decode(lb, steps=4, seed=2))
    with pytest.raises(ValueError, match="sampler"):
        codec.decode(lb, sampler="euler")
    with pytest.raises(ValueError, match="strength"):
        codec.decode(lb, strength=0.0)
    with pytest.raises(ValueError, match="expected images"):
        codec.encode(torch.rand(1, 3, 28, 28))


def test_channel_augment_straight_through(tiny_codec):
    specs = tiny_codec.config.layers
    x = torch.rand(4, 1, 28, 28)
    vals = tiny_codec.encoder(x)
    erased = torch.tensor([[False] * 8, [False] + [True] * 7, [True] * 8, [False] * 8])
    noisy = channel_augment(vals, specs, erased, torch.tensor([0.0, 0.1, 0.0, 0.05]),
                            torch.tensor([False, False, False, True]),
                            torch.Generator().manual_seed(0))
    ref, _ = tiny_codec.quantizer.dequantize(tiny_codec.quantizer.quantize(vals))
    assert torch.allclose(noisy[0][0], ref[0][0])               # clean image: plain rounding
    assert (noisy[1][2] == 0).all() and all((n[2] == 0).all() for n in noisy)
    sum(n.sum() for n in noisy).backward()
    assert tiny_codec.encoder.perceptual.fc.weight.grad.abs().sum() > 0
    assert tiny_codec.encoder.semantic.proj.weight.grad.abs().sum() > 0
    tiny_codec.zero_grad(set_to_none=True)


def test_train_save_load_round_trip(tmp_path, monkeypatch):
    out = tmp_path / "ck"
    codec = train_codec("fmnist", steps=2, batch=4, seed=0, out=str(out),
                        config=tiny_config("fmnist"), progress=False, eval_every=2)
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["bits_per_layer"] == [4, 4, 8, 10, 12, 28, 58, 128]
    assert cfg["training"]["steps_done"] == 2 and cfg["training"]["seed"] == 0
    assert {"psnr_mse_head_8L", "z1_probe_acc"} <= set(cfg["training"]["history"][-1])

    # the checkpoint is read with safetensors only; the one torch.load allowed is the
    # EfficientNet backbone's package file, and only with weights_only=True (no unpickling)
    real_load, calls = torch.load, []

    def guarded_load(f, *a, **k):
        calls.append(str(f))
        assert k.get("weights_only") is True, "torch.load without weights_only=True"
        assert not str(f).startswith(str(out)), "checkpoint read with torch.load"
        return real_load(f, *a, **k)

    monkeypatch.setattr(torch, "load", guarded_load)
    loaded = SemanticCodec.from_pretrained(out)
    assert all("efficientnet" in c for c in calls)
    x = torch.rand(2, 1, 28, 28)
    lb = codec.encode(x)
    assert torch.equal(lb.flat(), loaded.encode(x).flat()) or (
        (lb.flat() != loaded.encode(x).flat()).float().mean() < 0.02)  # float16 storage
    y1 = codec.decode(lb, steps=4, seed=0)
    y2 = loaded.decode(lb, steps=4, seed=0)
    assert (y1 - y2).abs().max() < 0.02
    # same seed, same weights
    again = train_codec("fmnist", steps=2, batch=4, seed=0, out=None,
                        config=tiny_config("fmnist"), progress=False, eval_every=0)
    for (k, a), (_, b) in zip(codec.state_dict().items(), again.state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k


def _tiny_checkpoint(tmp_path) -> str:
    root = tmp_path / "checkpoints"
    SemanticCodec(tiny_config("fmnist")).save_pretrained(root / "fmnist")
    write_manifest(root)
    return str(root / "fmnist")


def test_corrupted_checkpoint_names_file_and_command(tmp_path, monkeypatch):
    path = _tiny_checkpoint(tmp_path)
    monkeypatch.setenv("GSC_CHECKPOINTS", str(tmp_path / "checkpoints"))
    assert default_checkpoint("fmnist") == path
    SemanticCodec.from_pretrained("fmnist")                     # intact: loads
    weights = os.path.join(path, "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(weights, "wb").write(bytes(data))
    for load in (lambda: default_checkpoint("fmnist"),
                 lambda: SemanticCodec.from_pretrained("fmnist"),
                 lambda: SemanticCodec.from_pretrained(path)):
        with pytest.raises(CheckpointError) as err:
            load()
        msg = str(err.value)
        assert "model.safetensors" in msg and "gsc train --data fmnist" in msg
        assert "\n" not in msg
    # without a manifest a damaged header is still reported with the file name
    os.remove(tmp_path / "checkpoints" / "MANIFEST.json")
    open(weights, "wb").write(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        SemanticCodec.from_pretrained(path)


def test_missing_checkpoint_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GSC_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"gsc train --data photos"):
        default_checkpoint("photos")
    with pytest.raises(CheckpointError, match="config.json is missing"):
        SemanticCodec.from_pretrained(str(tmp_path))


def test_mismatched_config_is_reported(tmp_path):
    path = _tiny_checkpoint(tmp_path)
    cfg = json.loads(open(os.path.join(path, "config.json")).read())
    cfg["decoder"]["cond_hidden"] = 32
    open(os.path.join(path, "config.json"), "w").write(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="config.json is corrupted"):
        SemanticCodec.from_pretrained(path)                     # sha256 differs
    with pytest.raises(CheckpointError, match="does not match"):
        SemanticCodec.from_pretrained(path, verify=False)


# ---- shipped checkpoints ------------------------------------------------------------------

def test_shipped_checkpoints_are_listed_and_small():
    from bridge.common import checkpoints_root

    root = checkpoints_root()
    manifest = json.loads((root / "MANIFEST.json").read_text())
    total = 0
    for name in PRESETS:
        for f in ("config.json", "model.safetensors"):
            assert f"{name}/{f}" in manifest["files"], f"{name}/{f} not in MANIFEST.json"
        assert manifest["rebuild"][name].startswith(f"gsc train --data {name}")
    for rel, entry in manifest["files"].items():
        assert C.file_sha256(root / rel) == entry["sha256"], rel
        total += entry["bytes"]
    assert total <= 40 * 2**20
    assert not [p for p in root.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]


def _test_images(name: str, n: int) -> torch.Tensor:
    from gsc_semantic.data import load_dataset

    ds = load_dataset(name, "test", seed=0)
    step = len(ds) // n
    return torch.stack([ds[i * step]["image"] for i in range(n)])


def _psnr(x, y) -> float:
    return float(psnr(x, y).mean())


@pytest.fixture(scope="module")
def effnet_distance():
    from gsc_semantic.metrics import EffNetPerceptualDistance

    return EffNetPerceptualDistance()


@pytest.fixture(scope="module", params=sorted(PRESETS))
def shipped(request):
    name = request.param
    codec = SemanticCodec.from_pretrained(name)
    x = _test_images(name, 48 if name == "fmnist" else 24)
    return name, codec, x, codec.encode(x)


def test_shipped_degrades_gracefully_with_erasures(shipped, effnet_distance):
    """Mean PSNR falls as trailing layers are lost (0.3 dB tolerance per step), all layers
    are clearly better than z1 alone, and z1 alone is semantically closer than nothing."""
    name, codec, x, lb = shipped
    L = codec.num_layers
    det, gen = [], []
    for kept in range(L, 0, -1):
        mask = erasure_mask_from_prefix(len(x), L, kept)
        det.append(_psnr(x, codec.decode(lb, mask, sampler="mse")))
        gen.append(_psnr(x, codec.decode(lb, mask, steps=8, seed=0)))
    for series in (det, gen):
        assert all(b <= a + 0.3 for a, b in itertools.pairwise(series)), (name, series)
        assert series[0] > series[-1] + 2.0, (name, series)
    assert det[0] > gen[0]                     # the MSE head is the PSNR-optimal output
    z1 = codec.decode(lb, erasure_mask_from_prefix(len(x), L, 1), sampler="mse")
    nothing = codec.decode(lb, torch.ones(len(x), L, dtype=torch.bool), sampler="mse")
    with torch.no_grad():
        d_z1 = float(effnet_distance(x, z1).mean())
        d_none = float(effnet_distance(x, nothing).mean())
    assert d_z1 < 0.97 * d_none, (name, d_z1, d_none)


def test_shipped_degrades_gracefully_with_bit_errors(shipped):
    """PSNR falls with the BER (0.3 dB tolerance per step), BER 1e-2 costs little, random
    bits (BER 0.5) cost a lot, soft (LLR) decoding is never clearly worse than hard
    decisions and better when the bits are pure noise."""
    name, codec, x, lb = shipped
    g = torch.Generator().manual_seed(0)
    hard, soft = [], []
    for ber in (0.0, 1e-3, 1e-2, 5e-2, 0.2, 0.5):
        noisy = [flip_bits(t, ber, g) for t in lb.layers]
        hard.append(_psnr(x, codec.decode(noisy, sampler="mse")))
        soft.append(_psnr(x, codec.decode([bsc_llr(t, ber) for t in noisy], sampler="mse")))
    assert all(b <= a + 0.3 for a, b in itertools.pairwise(hard)), (name, hard)
    assert hard[2] > hard[0] - 1.0, (name, hard)                 # BER 1e-2 costs < 1 dB
    assert hard[-1] < hard[0] - 3.0, (name, hard)                # the bits matter
    assert all(s_ >= h - 0.3 for s_, h in zip(soft, hard, strict=True)), (name, soft, hard)
    assert soft[-1] > hard[-1] + 0.5, (name, soft, hard)         # LLRs 0 -> prior mean
    y = codec.decode([flip_bits(t, 1e-2, g) for t in lb.layers], steps=8, seed=0)
    assert _psnr(x, y) > (16.0 if name == "fmnist" else 15.0), name
