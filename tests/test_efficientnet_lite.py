"""EfficientNet-Lite: architecture matches the shipped ImageNet weights and classifies."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gsc_semantic import efficientnet_lite as E


def _photo(name: str) -> np.ndarray:
    import skimage

    path = os.path.join(os.path.dirname(skimage.__file__), "data", name)
    return np.asarray(Image.open(path).convert("RGB"))


def _prep(arr: np.ndarray, res: int) -> torch.Tensor:
    """Shorter side -> res (antialiased bilinear), centre crop; RGB in [0, 1]."""
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()[None] / 255
    h, w = t.shape[-2:]
    s = res / min(h, w)
    t = F.interpolate(t, size=(max(res, round(h * s)), max(res, round(w * s))),
                      mode="bilinear", antialias=True, align_corners=False)
    h, w = t.shape[-2:]
    y, x = (h - res) // 2, (w - res) // 2
    return t[..., y:y + res, x:x + res].clamp(0, 1)


@pytest.fixture(scope="module")
def lite0():
    return E.efficientnet_lite("lite0").requires_grad_(False)


@pytest.fixture(scope="module")
def lite2():
    return E.efficientnet_lite("lite2").requires_grad_(False)


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_state_dict_keys_and_shapes_match_exactly(variant):
    sd = E.load_pretrained_state_dict(variant)
    model = E.EfficientNetLite(variant).state_dict()
    assert set(sd) == set(model)
    for k, v in sd.items():
        assert tuple(v.shape) == tuple(model[k].shape), k
    net = E.EfficientNetLite(variant)
    assert net.load_state_dict(sd, strict=True) is not None


def test_weights_loaded_with_weights_only(monkeypatch):
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    E.load_pretrained_state_dict("lite0")
    assert seen.get("weights_only") is True


def test_parameter_counts_match_published_sizes():
    # EfficientNet-Lite0 has 4.7 M parameters, Lite2 6.1 M (TF model zoo table)
    counts = {v: sum(p.numel() for p in E.EfficientNetLite(v).parameters()) / 1e6
              for v in ("lite0", "lite2")}
    assert counts["lite0"] == pytest.approx(4.65, abs=0.06)
    assert counts["lite2"] == pytest.approx(6.09, abs=0.06)


def test_width_and_depth_scaling_rules():
    # lite4 stage widths as published for TF EfficientNet-Lite4
    net = E.EfficientNetLite("lite4")
    assert [net.stage_channels[f"stage{i}"] for i in range(1, 8)] == [
        24, 32, 56, 112, 160, 272, 448]
    # lite: stem 32 / head 1280 fixed; first and last stage single block
    assert net._conv_stem.out_channels == 32 and net._conv_head.out_channels == 1280
    lite2 = E.EfficientNetLite("lite2")
    assert len(lite2._blocks) == 21 and len(E.EfficientNetLite("lite0")._blocks) == 16
    for v in ("lite1", "lite3", "lite4"):
        with pytest.raises(ValueError, match="no offline"):
            E.efficientnet_lite(v, pretrained=True)
        out = E.efficientnet_lite(v, pretrained=False)(torch.rand(1, 3, 32, 32))
        assert out.shape == (1, 1000)
    with pytest.raises(ValueError, match="unknown"):
        E.EfficientNetLite("lite9")


@pytest.mark.parametrize("name", ["lite0", "lite2"])
def test_classifies_bundled_photos(name, request):
    net = request.getfixturevalue(name)
    batch = torch.cat([_prep(_photo("chelsea.png"), net.resolution),
                       _prep(_photo("coffee.png"), net.resolution)])
    with torch.no_grad():
        top5 = net(batch).topk(5).indices.tolist()
    assert set(top5[0]) & {281, 282, 283, 284, 285}, top5[0]  # cats
    assert top5[0][0] in range(281, 286)
    assert set(top5[1]) & {967, 968, 504}, top5[1]  # espresso, cup, coffee mug
    assert top5[1][0] in (967, 968, 504)


def _bn_mismatch(net: E.EfficientNetLite, x: torch.Tensor) -> list[float]:
    """Per BatchNorm: mean over channels of (batch mean - running mean)² / running var."""
    errs = []

    def hook(module, inputs, _):
        mu = inputs[0].mean((0, 2, 3))
        errs.append(float(((mu - module.running_mean) ** 2
                           / (module.running_var + module.eps)).mean()))

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, torch.nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return errs


def test_input_normalisation_and_padding_match_training(lite0, monkeypatch):
    """The batch statistics of natural photos agree best with the BatchNorm running
    statistics under (255x - 127) / 128 and TF 'SAME' padding (the training setup)."""
    from gsc_semantic.data.photos import load_photo, photo_sources

    try:
        photos = [load_photo(n, 166) for n in photo_sources()]
    except FileNotFoundError as err:
        pytest.skip(str(err))
    rng = np.random.default_rng(0)
    crops = []
    for ph in photos:  # 3 random 128-px crops from each of the 20 photos
        h, w = ph.shape[-2:]
        for _ in range(3):
            y, x = int(rng.integers(0, h - 127)), int(rng.integers(0, w - 127))
            crops.append(ph[None, :, y:y + 128, x:x + 128].float() / 255)
    x = torch.cat(crops)

    lite = np.array(_bn_mismatch(lite0, x))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    monkeypatch.setattr(lite0, "preprocess", lambda t: (t - mean) / std)
    imagenet = np.array(_bn_mismatch(lite0, x))
    monkeypatch.undo()

    def symmetric(self, t):
        pad = tuple(k // 2 for k in self.kernel_size)
        return F.conv2d(t, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)

    monkeypatch.setattr(E._SameConv2d, "forward", symmetric)
    sym = np.array(_bn_mismatch(lite0, x))
    monkeypatch.undo()

    assert lite[0] < 0.7 * imagenet[0]  # stem sees the input normalisation first
    assert lite.mean() < 0.5 * imagenet.mean()
    assert lite.mean() < 0.8 * sym.mean()  # padding convention (measured ratio 0.57)
    assert (lite < sym).mean() > 0.7  # in most layers (measured 90 %)


def test_features_shapes_and_consistency(lite0):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        f = lite0.features(x)
        logits = lite0(x)
    assert list(f.maps) == list(E.STAGE_NAMES)
    strides = {"stage1": 2, "stage2": 4, "stage3": 8, "stage4": 16, "stage5": 16,
               "stage6": 32, "stage7": 32, "head": 32}
    for name, t in f.maps.items():
        assert t.shape == (2, lite0.stage_channels[name], 64 // strides[name],
                           64 // strides[name]), name
    assert f.pooled.shape == (2, 1280)
    assert torch.allclose(lite0._fc(f.pooled), logits, atol=1e-5)
    assert torch.allclose(f.maps["head"].mean((2, 3)), f.pooled)
    sub = lite0.features(x, stages=("stage2",))
    assert list(sub.maps) == ["stage2"] and torch.allclose(sub.pooled, f.pooled)
    with pytest.raises(ValueError, match="unknown stage"):
        lite0.features(x, stages=("stage9",))
    # odd sizes work (SAME padding)
    assert lite0.features(torch.rand(1, 3, 37, 51)).maps["stage7"].shape[-2:] == (2, 2)


def test_normalize_input_flag(lite0):
    raw = E.EfficientNetLite("lite0", normalize_input=False)
    raw.load_state_dict(lite0.state_dict())
    raw.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(raw((x * 255 - 127) / 128), lite0(x), atol=1e-5)


def test_lite2_features_distinguish_photos(lite2):
    """Pooled features of two crops of one photo are closer than crops of different photos."""
    cat = _prep(_photo("chelsea.png"), 160)
    cup = _prep(_photo("coffee.png"), 160)
    x = torch.cat([cat[..., :128, :128], cat[..., 32:, 32:], cup[..., :128, :128]])
    with torch.no_grad():
        p = F.normalize(lite2.features(x, stages=()).pooled, dim=1)
    assert float(p[0] @ p[1]) > float(p[0] @ p[2]) + 0.1
