"""DeepJSCC / DeepJSCC-Q: power normalisation, rho accounting on gsc_phy's grid, 5G QAM
mapping, SNR conditioning, checkpoints (sha256), the simulated link, the CLI's bad input.

Tiny models are built in the tests (no shipped checkpoint needed); < 60 s on 2 cores.
"""

import json
import math
import os

import pytest
import torch

from gsc_semantic.deepjscc import (
    DeepJSCC,
    DeepJSCCConfig,
    load_deepjscc,
    power_normalize,
    qam_points,
    qam_quantize,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(latent: int = 6, **kw) -> DeepJSCC:
    torch.manual_seed(0)
    return DeepJSCC(DeepJSCCConfig(hidden=8, latent_channels=latent, af_hidden=8, **kw)).eval()


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 40, 56), (3, 1, 28, 28)])
def test_power_is_one_per_complex_symbol_over_the_image(shape):
    model = tiny(latent=5, in_channels=shape[1], num_down=2)
    x = model.encode(torch.rand(*shape) * 3, snr_db=5.0)
    assert x.is_complex() and x.shape == (shape[0], model.num_symbols(*shape[-2:]))
    assert torch.allclose(x.abs().pow(2).mean(1), torch.ones(shape[0]), atol=1e-5)
    y = power_normalize(torch.randn(4, 7, dtype=torch.complex64) * 9)
    assert torch.allclose(y.abs().pow(2).mean(1), torch.ones(4), atol=1e-5)


def test_rho_accounting_matches_the_grid():
    from gsc_phy.frame import FrameFormat
    from gsc_semantic.deepjscc_link import grid_config, plan_symbols

    ff = FrameFormat.from_config(grid_config())
    rg = ff.resource_grid
    data = ff.num_streams * ff.data_symbols_per_stream
    cu = ff.channel_uses_per_frame
    assert data == rg.num_data_symbols  # data REs: pilots, guards, DC excluded
    assert cu == rg.num_ofdm_symbols * (rg.fft_size + rg.cyclic_prefix_length)
    for rho in (1 / 12, 1 / 48, 1 / 6):
        p = plan_symbols(rho, (3, 256, 256), 3)
        budget = rho * 3 * 256 * 256 * data / cu
        assert p.symbols_sent <= budget and p.rho_effective <= rho + 1e-12
        step = (32 * 32 / 2) * cu / data / (3 * 256 * 256)  # one latent channel's share
        assert rho - p.rho_effective < step
    p = plan_symbols(1 / 12, (3, 256, 256), 3)
    assert (p.latent_channels, p.symbols_sent) == (22, 11264)
    assert math.isclose(p.channel_uses, 11264 * cu / data)
    # fmnist: one channel more than fits, the surplus is not sent
    q = plan_symbols(1 / 12, (1, 28, 28), 2)
    assert q.symbols_sent == math.floor(784 / 12 * data / cu) < q.symbols_model


def test_link_sends_what_it_counts():
    from gsc_semantic.deepjscc_link import DeepJSCCLink

    model = tiny(latent=22)
    link = DeepJSCCLink(model, "awgn", rho=1 / 12)
    x = torch.rand(3, 3, 64, 64)
    out = link(x, snr_db=10.0, channel_seed=1)
    ff = link.link.frame
    n = out.plan.symbols_sent
    assert n == model.num_symbols(64, 64) == 704
    assert out.frames == math.ceil(3 * n / ff.data_symbols_per_stream)
    assert out.channel_uses == out.frames * ff.channel_uses_per_frame
    assert out.rho_effective == pytest.approx(out.channel_uses / x.numel())
    assert out.plan.rho_effective <= 1 / 12
    assert out.images.shape == x.shape and bool(out.delivered.all())


def test_qam_outputs_are_the_nearest_5g_points():
    gen = torch.Generator().manual_seed(0)
    z = torch.complex(torch.randn(2000, generator=gen), torch.randn(2000, generator=gen)) * 0.9
    z[:5] = torch.tensor([3 + 3j, -5 + 0.1j, 0j, 0.0001 - 0.0001j, -2 - 7j])
    for mod, m in (("16qam", 16), ("64qam", 64), ("256qam", 256)):
        pts = qam_points(mod)
        assert pts.numel() == m
        assert torch.allclose(pts.abs().pow(2).mean(), torch.tensor(1.0), atol=1e-5)
        q = qam_quantize(z, mod)
        d = (q[:, None] - pts[None]).abs()
        assert bool((d.min(1).values < 1e-5).all()), mod  # exactly a constellation point
        nearest = pts[(z[:, None] - pts[None]).abs().argmin(1)]
        assert torch.allclose(q, nearest, atol=1e-5), mod  # and the nearest one
    # 38.211 normalisation: 16-QAM levels are {±1, ±3}/sqrt(10)
    lv = sorted({round(v * 10 ** 0.5, 4) for v in qam_points("16qam").real.tolist()})
    assert lv == [-3.0, -1.0, 1.0, 3.0]


def test_deepjscc_q_link_sends_constellation_points(monkeypatch):
    from gsc_semantic import deepjscc_link

    sent = {}
    link = deepjscc_link.DeepJSCCLink(tiny(latent=22), "awgn", rho=1 / 12, quantize=True)
    original = link.link.send_symbols

    def spy(x, snr_db):
        sent["x"] = x.clone()
        return original(x, snr_db)

    monkeypatch.setattr(link.link, "send_symbols", spy)
    out = link(torch.rand(1, 3, 64, 64), snr_db=15.0, channel_seed=0)
    assert out.records[0].modulation == "64qam"
    pts = qam_points("64qam")
    x = sent["x"].reshape(-1)[:out.plan.symbols_sent]
    assert bool(((x[:, None] - pts[None]).abs().min(1).values < 1e-5).all())


def test_snr_conditioning_changes_the_output():
    model = tiny()
    x = torch.rand(1, 3, 32, 32)
    a, b = model.encode(x, -5.0), model.encode(x, 20.0)
    assert (a - b).abs().max() > 1e-4
    ya, yb = model.decode(a, -5.0, (32, 32)), model.decode(a, 20.0, (32, 32))
    assert (ya - yb).abs().max() > 1e-4


def test_save_from_pretrained_round_trip_and_tamper(tmp_path):
    from gsc_semantic.codec import write_manifest
    from gsc_semantic.decoder import CheckpointError

    model = tiny()
    d = tmp_path / "deepjscc_photos_1-12"
    model.save_pretrained(d, training={"steps_done": 3})
    write_manifest(tmp_path)
    again = DeepJSCC.from_pretrained(d)
    assert again.config == model.config and again.training_record["steps_done"] == 3
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(again.encode(x, 3.0), model.encode(x, 3.0))
    assert json.loads((d / "config.json").read_text())["latent_channels"] == 6
    raw = bytearray((d / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (d / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="sha256"):
        DeepJSCC.from_pretrained(d)


def test_missing_checkpoint_is_a_clear_config_error(tmp_path, monkeypatch):
    from bridge.common import ConfigError

    monkeypatch.setenv("GSC_CHECKPOINTS", str(tmp_path))
    with pytest.raises(ConfigError, match="gsc train-jscc --data photos --rho 1/48"):
        load_deepjscc("photos", 1 / 48)


@pytest.mark.parametrize("channel,estimator", [("awgn", None), ("awgn", "ls"),
                                               ("rayleigh", "ls")])
def test_tiny_model_round_trip_through_the_simulated_link(channel, estimator):
    from gsc_semantic.deepjscc_link import DeepJSCCLink

    model = tiny(latent=22)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        clean = model.decode(model.encode(x, 20.0), 20.0, (64, 64))
    link = DeepJSCCLink(model, channel, rho=1 / 12, estimator=estimator)
    assert link.cfg.estimator == (estimator or "perfect")  # default: the baselines' receiver
    with torch.no_grad():
        sym = model.encode(x, 20.0)
        x_hat, no_eff, _ = link.transmit(sym, 45.0, channel_seed=3)
        noisy, _, _ = link.transmit(sym, -5.0, channel_seed=3)
        high = model.decode(x_hat, 20.0, (64, 64))
        low = model.decode(noisy, 20.0, (64, 64))
    assert (x_hat - sym).abs().pow(2).mean() < 1e-3
    assert float(no_eff.mean()) < 1e-3
    err_high = float((high - clean).abs().mean())
    err_low = float((low - clean).abs().mean())
    assert err_high < 0.01 and err_low > 3 * err_high
    out = link(x, snr_db=45.0, channel_seed=3)  # the whole receiver path, SNR conditioning
    assert out.records[0].snr_eff_db > 30 and out.images.shape == x.shape


def test_eval_summary_judges_deepjscc():
    from gsc_semantic.eval_targets import check_deepjscc, check_targets

    def row(m, s, p, perc=0.5):
        return {"method": m, "snr_db": s, "psnr": p, "ms_ssim": 0.0, "perceptual": perc,
                "consistency": 1.0}

    snrs = [float(s) for s in range(-5, 21)]
    rows = [row("deepjscc", s, 20 + 0.3 * s, 0.4) for s in snrs]
    rows += [row("jpeg", s, 10.0 + (15 if s > 3 else 0), 0.6) for s in snrs]
    rows += [row("capacity", s, 30.0, 0.3) for s in snrs]
    rows += [row("gsc", s, 18.0, 0.35) for s in snrs]
    res = check_deepjscc(rows)
    assert res["psnr_above_codecs_at_low_snr"]["pass"] is False  # jpeg jumps at 4 dB
    assert res["psnr_above_codecs_at_low_snr"]["beaten_by"] == {"4": ["jpeg"], "5": ["jpeg"]}
    assert res["no_cliff"]["pass"] is True
    assert res["psnr_vs_capacity_at_20db"]["difference_db"] == pytest.approx(-4.0)
    gsc = check_targets(rows, "gsc")
    assert gsc["perceptual_below_deepjscc"]["pass"] is True
    assert "deepjscc" not in gsc["perceptual_below_every_codec"]["baselines"]


@pytest.mark.parametrize("args", [
    ["--data", "cifar"],
    ["--rho", "0"],
    ["--rho", "abc"],
    ["--patch", "4"],
    ["--q-fraction", "2"],
    ["--warm-start", "/nonexistent/deepjscc"],
    ["--no-such-flag"],
])
def test_train_jscc_bad_input_one_line_exit_2(args, capsys, tmp_path):
    from gsc_cli.root import main

    code = main(["train-jscc", *args, "--out", str(tmp_path / "m"), "--quiet"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gsc: error: "), err
    assert not os.path.exists(tmp_path / "m")


def test_send_deepjscc_on_a_streamed_link_is_refused(capsys, tmp_path):
    import numpy as np
    from PIL import Image

    from gsc_cli.root import main

    img = tmp_path / "p.png"
    Image.fromarray(np.full((80, 96, 3), 128, dtype=np.uint8)).save(img)
    code = main(["send", str(img), "--ratio", "1/12", "--baselines", "jpeg,deepjscc",
                 "--link", "loopback", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("gsc: error: ") and "--link sim" in err, err
    code = main(["send", str(img), "--baselines", "deepjscc-z", "--out", str(tmp_path / "o")])
    assert code == 2 and "deepjscc-q" in capsys.readouterr().err
