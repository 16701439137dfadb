"""Metrics against known values, reference implementations and monotonicity."""

import math
import os

import numpy as np
import pytest
import pytorch_msssim
import scipy.linalg
import torch
import torch.nn.functional as F
from PIL import Image

from gsc_semantic import metrics as M


def _photo_batch(size: int = 64) -> torch.Tensor:
    """Eight deterministic crops of two bundled scikit-image photos, RGB in [0, 1]."""
    import skimage

    out = []
    for name in ("astronaut.png", "coffee.png"):
        path = os.path.join(os.path.dirname(skimage.__file__), "data", name)
        img = Image.open(path).convert("RGB")
        img = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)
        t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
        for y, x in ((0, 0), (40, 60), (100, 120), (136, 180)):
            out.append(t[:, y:y + size, x:x + size])
    return torch.stack(out)


def _noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    y = F.pad(x, [r, r, r, r], mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


@pytest.fixture(scope="module")
def photos():
    return _photo_batch()


@pytest.fixture(scope="module")
def lite2():
    from gsc_semantic.efficientnet_lite import efficientnet_lite

    return efficientnet_lite("lite2").requires_grad_(False)


# --- PSNR --------------------------------------------------------------------------------


def test_psnr_of_known_mse():
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    y[1, :, :4] += 0.5  # half the pixels off by 0.5: MSE 0.125 -> 9.0309 dB
    assert M.psnr(x, y).tolist() == pytest.approx([20.0, 10 * math.log10(1 / 0.125)],
                                                  abs=1e-4)
    assert float(M.psnr(x[0] * 255, y[0] * 255, data_range=255)) == pytest.approx(20.0,
                                                                                 abs=1e-4)
    assert math.isinf(float(M.psnr(x[0], x[0])))
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(x, y[:1])


# --- SSIM / MS-SSIM -----------------------------------------------------------------------


def test_ssim_identical_is_one_and_matches_pytorch_msssim(photos):
    assert torch.allclose(M.ssim(photos, photos), torch.ones(len(photos)))
    y = _noisy(photos, 0.1)
    ref = pytorch_msssim.ssim(photos, y, data_range=1.0, size_average=False)
    assert torch.allclose(M.ssim(photos, y), ref, atol=1e-5)
    gray = photos[:, :1, :28, :28]
    assert torch.allclose(M.ssim(gray, gray), torch.ones(len(photos)))


def test_ssim_known_value_for_constant_images():
    # constant images a, b: SSIM = (2ab + C1) / (a² + b² + C1) (variances are zero)
    a, b, c1 = 0.3, 0.6, 0.01**2
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    assert float(M.ssim(x, y)) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1),
                                                rel=1e-4)  # float32 variances ~1e-8


def test_ms_ssim_five_scales_matches_pytorch_msssim():
    g = torch.Generator().manual_seed(1)
    x = _blur(torch.rand(2, 3, 176, 170, generator=g), 2.0)
    y = _noisy(x, 0.05)
    assert M.ms_ssim_levels(176, 170) == 5
    ref = pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False)
    assert torch.allclose(M.ms_ssim(x, y), ref, atol=1e-5)


def test_ms_ssim_small_images_use_fewer_scales(photos):
    assert [M.ms_ssim_levels(s, s) for s in (28, 32, 64, 96, 160, 161)] == [2, 2, 3, 4, 4, 5]
    assert M.ms_ssim_levels(64, 64, win_size=7) == 4
    for x in (photos, photos[:, :1, :28, :28]):
        assert torch.allclose(M.ms_ssim(x, x), torch.ones(len(x)))
    # one scale is plain SSIM
    y = _noisy(photos, 0.1)
    assert torch.allclose(M.ms_ssim(photos, y, levels=1), M.ssim(photos, y), atol=1e-6)
    with pytest.raises(ValueError, match="1..3 scales"):
        M.ms_ssim(photos, photos, levels=4)
    with pytest.raises(ValueError, match="smaller than"):
        M.ssim(photos[..., :8, :8], photos[..., :8, :8])


def test_psnr_ssim_ms_ssim_monotone_under_noise(photos):
    sigmas = [0.01, 0.03, 0.08, 0.2]
    for metric in (M.psnr, M.ssim, M.ms_ssim):
        values = [float(metric(photos, _noisy(photos, s)).mean()) for s in sigmas]
        assert all(a > b for a, b in zip(values, values[1:], strict=False)), (metric, values)
    gray = photos[:, :1, :28, :28]
    values = [float(M.ms_ssim(gray, _noisy(gray, s)).mean()) for s in sigmas]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


# --- EfficientNet-Lite2 feature distance --------------------------------------------------


def test_perceptual_distance_zero_for_identical_and_monotone(photos, lite2):
    dist = M.EffNetPerceptualDistance(net=lite2)
    assert dist.name == "EfficientNet-Lite2 feature distance"
    assert torch.allclose(dist(photos, photos), torch.zeros(len(photos)), atol=1e-6)
    noise = [float(dist(photos, _noisy(photos, s)).mean()) for s in (0.02, 0.05, 0.1, 0.2)]
    blur = [float(dist(photos, _blur(photos, s)).mean()) for s in (0.6, 1.0, 2.0, 3.0)]
    for values in (noise, blur):
        assert values[0] > 0
        assert all(a < b for a, b in zip(values, values[1:], strict=False)), values
    y = _noisy(photos, 0.1)
    assert torch.allclose(dist(photos, y), dist(y, photos), atol=1e-5)  # symmetric
    # every per-stage term is in [0, 4]
    assert float(dist(photos, 1 - photos).max()) <= 4.0


def test_perceptual_distance_is_differentiable_in_the_input(photos, lite2):
    dist = M.EffNetPerceptualDistance(net=lite2)
    y = _noisy(photos[:2], 0.1).requires_grad_(True)
    dist(photos[:2], y).sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0


def test_perceptual_distance_grayscale_small_images(photos, lite2):
    dist = M.EffNetPerceptualDistance(net=lite2, batch_size=3)
    gray = photos[:, :1, :28, :28]
    d = dist(gray, _noisy(gray, 0.1))
    assert d.shape == (len(photos),) and bool((d > 0).all())
    assert torch.allclose(dist(gray, gray), torch.zeros(len(photos)), atol=1e-6)


# --- Fréchet distances --------------------------------------------------------------------


def test_gaussian_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    d1, d2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    # diagonal covariances: ||dmu||² + sum (sqrt(d1) - sqrt(d2))²
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert M.gaussian_frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(
        expected, rel=1e-10)
    # general (non-commuting) covariances against scipy's sqrtm
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    ref = (np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2)
           - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
    assert M.gaussian_frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-8)
    assert M.gaussian_frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)
    # 1-D: (mu1 - mu2)² + (sigma1 - sigma2)²
    assert M.gaussian_frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(10.0)


def test_sample_frechet_distance_converges_to_closed_form():
    rng = np.random.default_rng(1)
    cov1 = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]])
    cov2 = np.diag([0.5, 1.0, 2.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, -1.0, 0.5])
    a = rng.multivariate_normal(mu1, cov1, size=40000)
    b = rng.multivariate_normal(mu2, cov2, size=40000)
    exact = M.gaussian_frechet_distance(mu1, cov1, mu2, cov2)
    assert M.frechet_distance(a, b) == pytest.approx(exact, rel=0.02)
    assert M.frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(
        0.0, abs=1e-8)
    with pytest.raises(ValueError):
        M.frechet_distance(a[:, :2], b)


def test_frechet_distance_few_samples_path_equals_covariance_formula():
    """N < D uses the nuclear-norm form of the cross term; it must equal the covariance form."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=(12, 40))
    b = 0.5 * rng.normal(size=(9, 40)) @ rng.normal(size=(40, 40)) / 6 + 0.3
    via_cov = M.gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                          b.mean(0), np.cov(b, rowvar=False))
    assert M.frechet_distance(a, b) == pytest.approx(via_cov, rel=1e-6)
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-10)


def test_frechet_effnet_distance(photos, lite2):
    fed = M.FrechetEffNetDistance(net=lite2, input_size=96, batch_size=5)
    assert fed.name == "Fréchet EfficientNet-Lite2 distance"
    feats = fed.features(photos)
    assert feats.shape == (len(photos), 1280)
    assert fed(photos, photos) == pytest.approx(0.0, abs=1e-6)
    values = [fed(photos, _noisy(photos, s)) for s in (0.03, 0.1, 0.3)]
    assert 0 < values[0] < values[1] < values[2], values


# --- classifier agreement and mIoU --------------------------------------------------------


def test_classifier_agreement_counts_top1_matches():
    def clf(x):  # class = index of the brightest of 4 pixel blocks
        return F.avg_pool2d(x.mean(1, keepdim=True), 4).flatten(1)

    x = torch.zeros(4, 1, 8, 4)
    for i in range(4):
        x[i, 0, :4, :] = 1.0  # class 0 everywhere
    y = x.clone()
    y[1], y[3] = 0.0, 0.0
    y[1, 0, 4:, :] = 1.0  # now class 1
    y[3, 0, 4:, :] = 1.0
    agree = M.ClassifierAgreement(clf, batch_size=3)
    assert agree(x, y).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert agree(x, x).mean() == 1.0


def test_classifier_agreement_with_imagenet_model(photos, lite2):
    agree = M.ClassifierAgreement(lite2)
    assert agree(photos, photos).mean() == 1.0
    assert agree(photos, _noisy(photos, 0.02)).mean() >= 0.5
    assert agree(photos, torch.rand_like(photos)).mean() < 0.5


def test_miou_on_hand_made_masks():
    true = torch.tensor([[0, 0, 1, 1],
                         [0, 0, 1, 1],
                         [2, 2, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 0, 1, 1],
                         [2, 2, 0, 2]])
    # class 0: inter 3, union 5 -> 0.6; class 1: inter 4, union 5 -> 0.8;
    # class 2: inter 3, union 4 -> 0.75; class 3 absent from both -> left out
    iou = M.iou_per_class(pred, true, num_classes=4)
    assert iou[:3].tolist() == pytest.approx([0.6, 0.8, 0.75])
    assert math.isnan(float(iou[3]))
    assert M.miou(pred, true, num_classes=4) == pytest.approx((0.6 + 0.8 + 0.75) / 3)
    assert M.miou(true, true, num_classes=4) == 1.0
    # a class predicted but absent from the truth counts with IoU 0
    assert M.miou(torch.full_like(true, 3), true, num_classes=4) == 0.0
    # ignored pixels (255) are left out: class 0 -> 3/4, class 1 -> 4/4, class 2 -> 3/4
    t2 = true.clone()
    t2[0, 1] = 255
    assert M.miou(pred, t2, num_classes=4, ignore_index=255) == pytest.approx(2.5 / 3)
    cm = M.confusion_matrix(pred, true, 4)
    assert cm.sum() == true.numel() and cm.diag().sum() == 10
    with pytest.raises(ValueError, match="mask values"):
        M.miou(pred + 4, true, num_classes=4)
