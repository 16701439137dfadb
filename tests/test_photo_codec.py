"""The 256-px photo codec: rate-scalable layers, the photo link, user images, the prior
pipeline and ``gsc send``'s handling of good and bad input."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from bridge.common import ConfigError
from gsc_cli.root import main
from gsc_semantic.data.user_images import load_user_images
from gsc_semantic.photo_layers import (
    MIN_LAYER_BYTES,
    LayerLadder,
    decode_layers,
    encode_layers,
    layer_summary,
)
from gsc_semantic.photo_link import PhotoLink
from gsc_semantic.photo_receiver import PhotoPrior, upscale_tiled

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photo(h: int = 256, w: int = 256, seed: int = 0) -> torch.Tensor:
    """A smooth test picture with edges: gradients, a disc and a few bars."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    c = torch.rand(3, 3, generator=g)
    img = torch.stack([c[k, 0] * xx + c[k, 1] * yy + 0.2 * c[k, 2] for k in range(3)])
    disc = ((yy - 0.4) ** 2 + (xx - 0.6) ** 2 < 0.05).float()
    bars = ((xx * 12).floor() % 2 == 0).float() * (yy > 0.7).float()
    img = img * (1 - 0.5 * disc) + 0.3 * bars + 0.02 * torch.randn(3, h, w, generator=g)
    return img.clamp(0, 1)


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    up = torch.nn.functional.interpolate(a[None], size=b.shape[-2:], mode="bicubic",
                                         align_corners=False)[0].clamp(0, 1)
    return float((up - b).square().mean())


@pytest.mark.parametrize("budget", [72, 133, 600, 1642, 7775])
def test_layers_fill_but_never_exceed_the_budget(budget):
    img = _photo()
    layers = encode_layers(img, budget)
    planned = LayerLadder().layer_bytes(budget, (256, 256))
    assert [len(b) for b in layers] == planned
    assert 8 * sum(planned) <= budget
    assert sum(planned) == budget // 8  # the last layer takes the rest
    if budget >= 133:  # TDL-A's budget at -5 dB holds a first layer
        assert decode_layers(layers, (256, 256)) is not None


def test_below_the_first_layer_nothing_is_sent():
    assert encode_layers(_photo(), 8 * MIN_LAYER_BYTES - 1) == []
    assert decode_layers([], (256, 256)) is None


def test_every_prefix_decodes_and_quality_rises_with_layers():
    img = _photo(seed=1)
    layers = encode_layers(img, 12047)
    assert len(layers) >= 6
    errors, sizes = [], []
    for k in range(1, len(layers) + 1):
        recon = decode_layers(layers[:k] + [None] * (len(layers) - k), (256, 256))
        assert recon is not None and recon.min() >= 0 and recon.max() <= 1
        errors.append(_mse(recon, img))
        sizes.append(recon.shape[-1])
    assert all(b <= a + 1e-6 for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.5 * errors[0]
    assert sizes == sorted(sizes)  # resolution never drops along the ladder


def test_an_erased_layer_drops_everything_after_it():
    img = _photo(seed=2)
    layers = encode_layers(img, 7775)
    prefix = decode_layers(layers[:2], (256, 256))
    holed = decode_layers(layers[:2] + [None] + layers[3:], (256, 256))
    assert torch.equal(prefix, holed)
    assert decode_layers([None] + layers[1:], (256, 256)) is None


def test_garbage_layers_are_erasures_not_crashes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        junk = [bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
                for _ in range(3)]
        out = decode_layers(junk, (64, 64))
        assert out is None or (out.dim() == 3 and out.shape[0] == 3)


def test_non_square_images_code_at_their_own_size():
    img = _photo(96, 160, seed=3)
    layers = encode_layers(img, 4000)
    recon = decode_layers(layers, (96, 160))
    assert recon.shape[0] == 3 and recon.shape[-1] / recon.shape[-2] == pytest.approx(160 / 96,
                                                                                     rel=0.1)
    assert [s["bytes"] for s in layer_summary(layers)] == [len(b) for b in layers]


def test_tiled_upscaling_has_no_seams():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 3, padding=1), torch.nn.PixelShuffle(4))
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        whole = net(x)
    tiled = upscale_tiled(net, x, tile=32, overlap=6)
    assert tiled.shape == whole.shape
    assert float((tiled - whole).abs().max()) < 1e-5


def test_prior_pipeline_sizes_and_unknown_prior():
    prior = PhotoPrior.bicubic()
    assert prior(torch.rand(3, 16, 24), (96, 144)).shape == (3, 96, 144)
    full = torch.rand(2, 3, 64, 64)
    assert torch.equal(prior(full, (64, 64)), full)  # a full-size reconstruction is shown as is
    with pytest.raises(ConfigError, match="unknown photo prior"):
        PhotoPrior.load("esrgan-9000")


def test_shipped_student_is_verified_against_its_manifest(tmp_path):
    from bridge.common import checkpoints_root
    from gsc_semantic.prior_student import STUDENT_DIR, load_student

    src = checkpoints_root() / STUDENT_DIR
    net = load_student(str(src))
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    copy = tmp_path / STUDENT_DIR
    shutil.copytree(src, copy)
    shutil.copy(checkpoints_root() / "MANIFEST.json", tmp_path)
    assert load_student(str(copy)) is not None
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="corrupted"):
        load_student(str(copy))


def test_photo_link_delivers_and_accounts_every_layer():
    link = PhotoLink(PhotoPrior.bicubic(), "awgn", rho=1 / 48)
    imgs = torch.stack([_photo(64, 64, seed=s) for s in range(3)])
    out = link(imgs, snr_db=20.0, channel_seed=1)
    assert out.images.shape == imgs.shape
    assert not out.erasure_mask.any()
    for r in out.records:
        assert r.delivered and r.layers_received == r.layers_sent > 0
        assert r.bits_sent <= r.budget_bits


def test_photo_link_erases_layers_at_low_snr_and_shows_the_fill():
    link = PhotoLink(PhotoPrior.bicubic(), "tdl-a", rho=1 / 48, fill=0.25)
    imgs = torch.stack([_photo(64, 64, seed=s) for s in range(8)])
    lost = 0
    for seed in range(4):
        out = link(imgs, snr_db=-5.0, channel_seed=seed)
        for i, r in enumerate(out.records):
            assert r.layers_received <= r.layers_sent
            assert bool(out.erasure_mask[i, :r.layers_received].any()) is False
            if not r.delivered:
                lost += 1
                assert torch.allclose(out.images[i], torch.full_like(out.images[i], 0.25))
    assert lost > 0  # TDL-A at -5 dB loses some first layers


def _save(path, size, mode="RGB"):
    Image.new(mode, size, 128).save(path)


def test_user_images_keep_size_or_square_and_name_the_skipped(tmp_path):
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "a.png", (120, 80))
    _save(tmp_path / "sub" / "b.jpg", (64, 200), "L")
    _save(tmp_path / "tiny.png", (10, 10))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    got = load_user_images([str(tmp_path)], size=None)
    assert [tuple(x.shape) for x in got.images] == [(3, 80, 120), (3, 200, 64)]
    reasons = dict(got.skipped)
    assert "10x10" in reasons[str(tmp_path / "tiny.png")]
    assert "not a readable image" in reasons[str(tmp_path / "broken.jpg")]
    sq = load_user_images([str(tmp_path)], size=256)
    assert all(tuple(x.shape) == (3, 256, 256) for x in sq.images)


def test_user_images_with_nothing_usable_raise_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for paths in ([str(tmp_path / "empty")], [str(tmp_path / "missing.png")], []):
        with pytest.raises(ConfigError) as err:
            load_user_images(paths)
        assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def send_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("send")
    (d / "folder").mkdir()
    arr = (_photo(96, 128, seed=5).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(arr).save(d / "folder" / "photo.jpg", quality=95)
    _save(d / "folder" / "tiny.png", (10, 10))
    (d / "folder" / "broken.png").write_bytes(b"\x89PNG junk")
    (d / "empty").mkdir()
    return d


@pytest.mark.parametrize("args,msg", [
    (["{d}/folder/tiny.png"], "10x10"),
    (["{d}/folder/broken.png"], "not a readable image"),
    (["{d}/empty"], "no image files"),
    (["{d}/folder/photo.jpg", "--ratio", "1/100000"], "first layer needs"),
    (["{d}/folder/photo.jpg", "--ratio", "lots"], "--ratio"),
    (["{d}/folder/photo.jpg", "--prior", "magic"], "--prior"),
    (["{d}/folder/photo.jpg", "--link", "carrier-pigeon"], "--link"),
    (["{d}/folder/photo.jpg", "--baselines", "webp,gif-ra"], "--baselines"),
])
def test_send_bad_input_is_one_line_and_exit_2(send_inputs, tmp_path, capsys, args, msg):
    argv = ["send", *[a.format(d=send_inputs) for a in args], "--out", str(tmp_path),
            "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gsc: error:") and msg in err[0], err


def test_send_processes_a_folder_and_names_what_it_skipped(send_inputs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["send", str(send_inputs / "folder"), "--snr", "10", "--ratio", "1/12",
            "--prior", "bicubic", "--baselines", "webp,webp-ra", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "tiny.png" in err and "broken.png" in err
    doc = json.loads((out / "send.json").read_text())
    assert {os.path.basename(s["file"]) for s in doc["skipped"]} == {"tiny.png", "broken.png"}
    (entry,) = doc["images"]
    assert entry["size"] == [128, 96]
    layers = entry["gsc"]["layers"]
    assert 8 * sum(layer["bytes"] for layer in layers) <= entry["budget"]["payload_bits"]
    assert entry["gsc"]["layers_sent"] == len(layers) > 0
    for m in ("gsc", "webp", "webp-ra"):
        assert set(entry[m]["metrics"]) == {"psnr", "ms_ssim", "perceptual", "consistency"}
    assert entry["webp"]["resolution"] == [96, 128]
    h, w = entry["webp-ra"]["resolution"]  # the adaptive one keeps the aspect
    assert h <= 96 and abs(w / h - 128 / 96) < 0.1
    assert entry["webp-ra"]["bytes"] <= entry["webp-ra"]["budget_bytes"]
    for m in ("gsc", "webp", "webp-ra"):  # one convention for every method
        assert entry[m]["channel_uses"] <= entry["budget"]["channel_uses"] + 1e-6, m
        assert entry[m]["frame_channel_uses"] >= entry[m]["channel_uses"], m
    assert entry["gsc"]["metrics"]["psnr"] > 20
    for name in ("photo.gsc.png", "photo.side_by_side.png"):
        with Image.open(out / name) as im:
            assert im.size[0] >= 128


def test_eval_on_a_user_folder_crops_to_256_and_lists_the_skipped(send_inputs, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(send_inputs / "folder", folder)
    arr = (_photo(300, 200, seed=6).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(arr).save(folder / "tall.png")
    out = tmp_path / "eval"
    argv = ["eval", "--data", str(folder), "--methods", "gsc-bicubic,webp,webp-ra,capacity",
            "--snr", "10", "--ratio", "1/12", "--trials", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    doc = json.loads((out / "eval.json").read_text())
    rows = {r["method"]: r for r in doc["rows"]}
    assert set(rows) == {"gsc-bicubic", "webp", "webp-ra", "capacity"}
    assert rows["gsc-bicubic"]["delivered"] == 1.0
    res = rows["webp-ra"]["resolution"]
    assert res["not_sent"] == 0 and sum(res["sizes"].values()) == doc["config"]["num_images"]
    assert "coded resolution" in (out / "eval.md").read_text()
    skipped = json.dumps(doc["config"])
    assert "tiny.png" in skipped and "broken.png" in skipped


def test_eval_refuses_methods_that_do_not_apply(tmp_path, capsys):
    assert main(["eval", "--data", "fmnist", "--methods", "gsc-bicubic", "--out",
                 str(tmp_path)]) == 2
    assert main(["eval", "--data", "photos", "--methods", "gsc-mse", "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("gsc: error:") for e in err)
