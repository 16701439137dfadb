"""Foundation-encoder registry: local-path loading through diffusers / transformers /
open_clip, tested with tiny randomly initialised models saved in the test (no downloads)."""

import builtins
import importlib.util

import pytest
import torch

from gsc_semantic import foundation as fd
from gsc_semantic.encoder import CodecEncoder
from gsc_semantic.quantizer import LayerSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_registry_names_and_unknown():
    assert {"efficientnet-lite0", "efficientnet-lite2", "open_clip", "transformers",
            "sd-vae"} <= set(fd.FOUNDATION_ENCODERS)
    with pytest.raises(fd.FoundationError, match="unknown foundation encoder"):
        fd.load_backbone("resnet-9000")


def test_efficientnet_backbone_frozen_and_grayscale():
    net = fd.load_backbone("efficientnet-lite0", input_size=64)
    assert net.num_features == 1280
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training                     # stays in eval mode (frozen BN statistics)
    g = torch.rand(2, 1, 28, 28)
    f1, f3 = net(g), net(g.expand(-1, 3, -1, -1))
    assert f1.shape == (2, 1280) and torch.allclose(f1, f3)
    assert not f1.requires_grad


def test_missing_local_path_is_one_clear_line(tmp_path):
    with pytest.raises(fd.FoundationError, match="not found"):
        fd.load_backbone("sd-vae", path=str(tmp_path / "nowhere"))
    with pytest.raises(fd.FoundationError, match="local path"):
        fd.load_backbone("sd-vae", path=None)


def test_missing_package_names_it(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.split(".")[0] in ("open_clip", "transformers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(fd.importlib, "import_module",
                        lambda name: fake_import(name, fromlist=["x"]))
    with pytest.raises(fd.FoundationError, match="pip install open_clip_torch"):
        fd.load_backbone("open_clip", path="/x")
    with pytest.raises(fd.FoundationError, match="pip install transformers"):
        fd.load_backbone("transformers", path="/x")


def _tiny_vae(path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
                        block_out_channels=(8, 16), layers_per_block=1, latent_channels=2,
                        norm_num_groups=4, sample_size=32)
    vae.save_pretrained(path, safe_serialization=True)
    return vae.eval()


def test_sd_vae_from_local_folder(tmp_path):
    vae = _tiny_vae(tmp_path / "vae")
    assert (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    net = fd.load_backbone("sd-vae", path=str(tmp_path / "vae"), input_size=32)
    assert net.latent_shape == (2, 16, 16) and net.num_features == 512
    x = torch.rand(3, 3, 32, 32)
    f = net(x)
    with torch.no_grad():
        ref = vae.encode(2 * x - 1).latent_dist.mean * vae.config.scaling_factor
    assert f.shape == (3, 512)
    assert torch.allclose(f, ref.flatten(1), atol=1e-5)


def test_codec_encoder_on_a_foundation_backbone(tmp_path):
    _tiny_vae(tmp_path / "vae")
    specs = [LayerSpec("z1", 6, 2, "semantic"), LayerSpec("z2", 10, 2)]
    enc = CodecEncoder((3, 32, 32), specs, backbone="sd-vae", backbone_size=32,
                       backbone_path=str(tmp_path / "vae"), channels=(8, 16), flat_channels=4)
    vals = enc(torch.rand(2, 3, 32, 32))
    assert [v.shape for v in vals] == [(2, 6), (2, 10)]
    assert all(v.abs().max() <= 1 for v in vals)
    # the frozen backbone is not part of the trained state
    assert not any(k.startswith("backbone") for k in enc.state_dict())


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="transformers not installed")
def test_transformers_clip_vision_from_local_folder(tmp_path):
    import transformers

    cfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2,
                                        image_size=32, patch_size=8, projection_dim=16)
    model = transformers.CLIPVisionModelWithProjection(cfg)
    model.save_pretrained(tmp_path / "clip", safe_serialization=True)
    net = fd.load_backbone("transformers", path=str(tmp_path / "clip"))
    assert net.num_features == 16
    assert net(torch.rand(2, 3, 40, 40)).shape == (2, 16)


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is None,
                    reason="open_clip_torch not installed")
def test_open_clip_from_local_file(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    model = open_clip.create_model("ViT-B-32")   # random init, no download
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    net = fd.load_backbone("open_clip", path=str(path), model_name="ViT-B-32")
    assert net(torch.rand(1, 3, 64, 64)).shape == (1, net.num_features)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="transformers not installed")
def test_transformers_dinov2_from_local_folder(tmp_path):
    import transformers

    cfg = transformers.Dinov2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=2, image_size=28, patch_size=7)
    transformers.Dinov2Model(cfg).save_pretrained(tmp_path / "dino", safe_serialization=True)
    net = fd.load_backbone("transformers", path=str(tmp_path / "dino"))
    assert net.num_features == 32 and net.input_size == 28
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 32)
