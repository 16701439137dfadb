"""gsc's semantic link over gsc_phy: budgets, layer erasures, and the eval command."""

import json
import subprocess
import sys

import pytest
import torch

from gsc_semantic.codec import PRESETS, SemanticCodec
from gsc_semantic.semantic_link import SemanticLink


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return SemanticCodec(PRESETS["fmnist"](), backbone_pretrained=False)


def test_high_snr_delivers_every_layer_that_fits(codec):
    x = torch.rand(4, 1, 28, 28)
    link = SemanticLink(codec, "awgn", rho=1 / 4, steps=2, seed=1)
    out = link(x, snr_db=30.0)
    sent = out.records[0].layers_sent
    assert sent == codec.layers_for_budget(out.budget.payload_bits) >= 3
    assert all(r.layers_received == sent and r.delivered for r in out.records)
    assert not out.erasure_mask[:, :sent].any() and out.erasure_mask[:, sent:].all()
    assert out.images.shape == x.shape and 0 <= out.images.min() <= out.images.max() <= 1
    # what arrived is what was sent: dequantising the received bits equals the encoder's
    assert out.records[0].bits_sent == sum(codec.bits_per_layer[:sent])


def test_low_snr_erases_layers_and_tiny_budget_sends_nothing(codec):
    x = torch.rand(4, 1, 28, 28)
    lost = SemanticLink(codec, "awgn", rho=1, steps=2)(x, snr_db=-16.0)  # below MCS1x8
    assert all(r.layers_sent >= 1 and r.layers_received == 0 for r in lost.records)
    assert lost.erasure_mask.all() and not lost.delivered.any()
    tiny = SemanticLink(codec, "awgn", rho=1 / 2000, steps=2)(x, snr_db=20.0)
    assert all(r.layers_sent == 0 and not r.delivered for r in tiny.records)


def test_wrong_image_shape_is_refused(codec):
    with pytest.raises(ValueError, match="takes"):
        SemanticLink(codec, "awgn")(torch.rand(2, 3, 64, 64), snr_db=10.0)


@pytest.mark.parametrize("args", [["--data", "mnist"], ["--channel", "cdl-a"],
                                  ["--methods", "gsc,png"], ["--ratio", "0"],
                                  ["--snr", "5:0:1"], ["--trials", "0"]])
def test_eval_bad_input(args, tmp_path):
    res = subprocess.run([sys.executable, "-m", "gsc_cli", "eval", *args, "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("gsc: error: "), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_eval_writes_table_and_figures(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gsc_cli", "eval", "--data", "fmnist",
                          "--snr", "0,20", "--ratio", "1/12",
                          "--methods", "gsc,gsc-mse,jpeg,capacity", "--images", "4",
                          "--steps", "2", "--trials", "2", "--out",
                          str(tmp_path), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "eval.json").read_text())
    assert doc["snr_kind"] == "esno" and len(doc["rows"]) == 8 and doc["config"]["trials"] == 2
    for row in doc["rows"]:
        assert {"method", "ratio", "snr_db", "psnr", "ms_ssim", "perceptual", "consistency",
                "delivered", "perceptual_ci95", "delivered_ci95", "trials"} <= set(row)
        assert len(row["per_trial"]["perceptual"]) == 2 and row["perceptual_ci95"] >= 0
    targets = doc["summary"]["1/12"]["targets"]
    assert targets["no_cliff"]["pass"] is None  # two SNR points 20 dB apart cannot judge it
    assert {t["pass"] for t in targets.values()} <= {True, False, None}
    assert "gsc targets, ρ = 1/12" in (tmp_path / "eval.md").read_text()
    gsc20 = next(r for r in doc["rows"] if r["method"] == "gsc" and r["snr_db"] == 20)
    assert gsc20["delivered"] == 1.0 and gsc20["layers_received_mean"] >= 3
    mse20 = next(r for r in doc["rows"] if r["method"] == "gsc-mse" and r["snr_db"] == 20)
    assert mse20["layers_received_mean"] == gsc20["layers_received_mean"]  # same link draws
    assert "targets_gsc-mse" in doc["summary"]["1/12"]
    assert (tmp_path / "curves_1-12.png").exists() and (tmp_path / "grid_1-12_snr20.png").exists()
