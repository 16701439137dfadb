"""Image-quality and semantic metrics with honest names.

Per-image metrics take two batches ``x`` (reference) and ``y`` (reconstruction) of shape
``[N, C, H, W]`` (or one image ``[C, H, W]``) with values in ``[0, data_range]`` and return a
tensor ``[N]``; average it yourself (the mean of per-image values, as is usual in the
semantic-communication literature). Set metrics (:class:`FrechetEffNetDistance`,
:func:`frechet_distance`, :func:`miou`) return a float.

What is *not* here: LPIPS, DISTS and Inception-FID need weights that are not available
offline. Their stand-ins are named for what they compute:

* :class:`EffNetPerceptualDistance` -- "EfficientNet-Lite2 feature distance": LPIPS-style
  distance on ImageNet EfficientNet-Lite2 features **without** LPIPS's learned per-channel
  weights; not calibrated to human judgements and not comparable to published LPIPS numbers.
* :class:`FrechetEffNetDistance` -- "Fréchet EfficientNet-Lite2 distance" (FED): the FID
  formula on EfficientNet-Lite2 pooled features; not comparable to published FID numbers.

Example::

    >>> import torch
    >>> from gsc_semantic.metrics import psnr, ssim
    >>> x = torch.rand(4, 3, 64, 64); y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    >>> psnr(x, y).shape, ssim(x, y).shape
    (torch.Size([4]), torch.Size([4]))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MS_SSIM_WEIGHTS",
    "psnr",
    "ssim",
    "ms_ssim",
    "ms_ssim_levels",
    "EffNetPerceptualDistance",
    "gaussian_frechet_distance",
    "frechet_distance",
    "FrechetEffNetDistance",
    "ClassifierAgreement",
    "confusion_matrix",
    "iou_per_class",
    "miou",
]

#: MS-SSIM scale weights of Wang, Simoncelli & Bovik (2003), finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _as_batch(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape != y.shape:
        raise ValueError(f"images must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if x.dim() == 3:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected [N, C, H, W] or [C, H, W] images, got {tuple(x.shape)}")
    return x.float(), y.float()


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: ``10 log10(data_range² / MSE)``.

    The MSE is taken over all channels and pixels of each image; identical images give
    ``inf``.

    Example::

        >>> x = torch.zeros(1, 1, 8, 8); y = x + 0.1       # MSE = 0.01
        >>> float(psnr(x, y))                                # 20 dB
        20.0
    """
    x, y = _as_batch(x, y)
    mse = (x - y).double().pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(data_range**2 / mse)).float()


def _gauss_1d(win_size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(win_size, dtype=torch.float64) - win_size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(img: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, 'valid' (no padding), per channel."""
    c = img.shape[1]
    k = g.to(img.dtype).to(img.device)
    img = F.conv2d(img, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(img, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, data_range: float, g: torch.Tensor,
             k: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per (image, channel): ``[N, C]`` each."""
    c1, c2 = (k[0] * data_range) ** 2, (k[1] * data_range) ** 2
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mu_x**2
    syy = _filter(y * y, g) - mu_y**2
    sxy = _filter(x * y, g) - mu_x * mu_y
    cs_map = (2 * sxy + c2) / (sxx + syy + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def _check_window(h: int, w: int, win_size: int) -> None:
    if win_size % 2 != 1 or win_size < 3:
        raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    if min(h, w) < win_size:
        raise ValueError(f"images of {h}x{w} pixels are smaller than the {win_size}-pixel "
                         f"SSIM window; pass a smaller win_size")


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
         win_sigma: float = 1.5, k: tuple[float, float] = (0.01, 0.03)) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), averaged over channels.

    Gaussian window ``win_size`` x ``win_size`` with ``win_sigma`` (defaults 11 and 1.5, as
    in the paper and in ``pytorch_msssim.ssim``, which it matches), no padding ('valid'
    window positions only), constants ``K1, K2 = k``. Colour images: mean of the per-channel
    SSIM (no colour transform).

    Example::

        >>> x = torch.rand(2, 1, 28, 28)
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    x, y = _as_batch(x, y)
    _check_window(x.shape[-2], x.shape[-1], win_size)
    s, _ = _ssim_cs(x, y, data_range, _gauss_1d(win_size, win_sigma), k)
    return s.mean(1)


def ms_ssim_levels(height: int, width: int, win_size: int = 11) -> int:
    """Number of MS-SSIM scales usable on ``height`` x ``width`` images (at most 5).

    A scale ``l`` (1 = full resolution) is used when the image at that scale, after
    ``l - 1`` halvings, is still larger than the window: ``min(h, w) > (win_size - 1) *
    2**(l - 1)`` (the same rule that makes ``pytorch_msssim.ms_ssim`` require more than 160
    pixels for 5 scales with an 11-pixel window). With the default window: 64 px -> 3 scales,
    28 px -> 2 scales, 161 px and up -> 5 scales.

    Example::

        >>> ms_ssim_levels(64, 64), ms_ssim_levels(28, 28), ms_ssim_levels(256, 256)
        (3, 2, 5)
    """
    side = min(height, width)
    levels = 0
    while levels < len(MS_SSIM_WEIGHTS) and side > (win_size - 1) * 2**levels:
        levels += 1
    return levels


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
            win_sigma: float = 1.5, levels: int | None = None,
            k: tuple[float, float] = (0.01, 0.03)) -> torch.Tensor:
    """Multi-scale SSIM per image (Wang, Simoncelli & Bovik 2003), with as many scales as
    the image size allows.

    What is computed exactly: with ``L = levels`` (default :func:`ms_ssim_levels`, i.e. 5
    scales above 160 px, 3 at 64 px, 2 at 28 px for an 11-pixel window), the weights are
    the first ``L`` of :data:`MS_SSIM_WEIGHTS` renormalised to sum to 1 when ``L < 5``
    (at 64 px: 0.0711, 0.4530, 0.4760; at 28 px: 0.1356, 0.8644), and

    ``MS-SSIM = prod_{l<L} relu(cs_l)^{w_l} * relu(ssim_L)^{w_L}``

    per channel, then averaged over channels; between scales the images are 2x2
    average-pooled (padding odd sizes). For ``L = 5`` this equals
    ``pytorch_msssim.ms_ssim`` (checked in the tests). Values for different ``L`` are not
    comparable with each other: report the image size with the number.

    Example::

        >>> x = torch.rand(2, 3, 64, 64)
        >>> ms_ssim(x, x)           # 3 scales at 64 px
        tensor([1., 1.])
    """
    x, y = _as_batch(x, y)
    h, w = x.shape[-2:]
    _check_window(h, w, win_size)
    max_levels = ms_ssim_levels(h, w, win_size)
    if levels is None:
        levels = max_levels
    if levels < 1 or levels > max_levels:
        raise ValueError(f"MS-SSIM with a {win_size}-pixel window allows 1..{max_levels} "
                         f"scales on {h}x{w} images, got levels={levels}")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    if levels < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    g = _gauss_1d(win_size, win_sigma)
    terms = []
    for lev in range(levels):
        s, cs = _ssim_cs(x, y, data_range, g, k)
        if lev < levels - 1:
            terms.append(torch.relu(cs))
            pad = [x.shape[-2] % 2, x.shape[-1] % 2]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
        else:
            terms.append(torch.relu(s))
    stacked = torch.stack(terms, 0)  # [L, N, C]
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """[N, 1|3, H, W] -> [N, 3, H, W] (grayscale replicated)."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x


def _device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


class EffNetPerceptualDistance(nn.Module):
    """EfficientNet-Lite2 feature distance (LPIPS-style, no learned weights). Lower is closer.

    For each stage ``l`` in ``stages`` the feature maps of both images are unit-normalised
    along channels, ``f / (||f||_2 + 1e-10)``, and

    ``d_l = mean over (h, w) of sum over c of (f̂x - f̂y)²``  (each ``d_l`` in [0, 4]);

    the distance is the plain mean of ``d_l`` over the stages. Differences from LPIPS: a
    different ImageNet backbone (EfficientNet-Lite2 instead of AlexNet/VGG), no learned
    per-channel linear weights, no calibration on human judgements, mean instead of sum over
    stages. Inputs are RGB or grayscale (replicated) in [0, 1]; images with a shorter side
    below ``min_side`` are bilinearly upsampled so the shorter side equals ``min_side``
    (default 64, so 28x28 images are compared at 64x64; stage7 has stride 32).

    :param stages: feature maps used (names from
        :data:`gsc_semantic.efficientnet_lite.STAGE_NAMES`); default stage1, 2, 3, 5 and 7
        (strides 2, 4, 8, 16, 32).
    :param variant: EfficientNet-Lite variant with offline weights (``"lite2"`` or
        ``"lite0"``); the name of the metric changes with it.
    :param net: an already built :class:`~gsc_semantic.efficientnet_lite.EfficientNetLite`
        to share (overrides ``variant``; it is put in eval mode, its ``requires_grad`` is
        left alone).

    :input x, y: ``[N, C, H, W]`` images in [0, 1] (moved to the network's device).
    :output: ``[N]`` distances; differentiable with respect to the inputs (usable as a
        loss), so wrap evaluation in ``torch.no_grad()``.

    Example::

        >>> dist = EffNetPerceptualDistance()
        >>> x = torch.rand(2, 3, 64, 64)
        >>> dist(x, x)
        tensor([0., 0.])
    """

    def __init__(self, stages: tuple[str, ...] = ("stage1", "stage2", "stage3", "stage5",
                                                  "stage7"),
                 variant: str = "lite2", min_side: int = 64, net: nn.Module | None = None,
                 batch_size: int = 64) -> None:
        super().__init__()
        from gsc_semantic.efficientnet_lite import efficientnet_lite

        if net is None:
            net = efficientnet_lite(variant, pretrained=True).requires_grad_(False)
        self.net = net.eval()
        self.stages = tuple(stages)
        self.min_side = min_side
        self.batch_size = batch_size
        self.name = f"EfficientNet-{self.net.variant.capitalize()} feature distance"

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = to_rgb(x.float().to(_device_of(self.net)))
        h, w = x.shape[-2:]
        if min(h, w) < self.min_side:
            s = self.min_side / min(h, w)
            x = _resize(x, (max(self.min_side, round(h * s)), max(self.min_side, round(w * s))))
        return x

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = _as_batch(x, y)
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            xb = self._prepare(x[i:i + self.batch_size])
            yb = self._prepare(y[i:i + self.batch_size])
            both = self.net.features(torch.cat([xb, yb]), stages=self.stages).maps
            n = xb.shape[0]
            d = 0.0
            for name in self.stages:
                f = both[name]
                f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                d = d + (f[:n] - f[n:]).pow(2).sum(1).mean((1, 2))
            out.append(d / len(self.stages))
        return torch.cat(out)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def gaussian_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                              sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu1, sigma1) and N(mu2, sigma2):

    ``||mu1 - mu2||² + tr(sigma1 + sigma2 - 2 (sigma1^½ sigma2 sigma1^½)^½)``

    computed in float64 with symmetric eigendecompositions (no complex ``sqrtm`` residue).

    Example::

        >>> import numpy as np
        >>> gaussian_frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
        4.0
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(
        np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"inconsistent shapes: mu {mu1.shape}/{mu2.shape}, "
                         f"sigma {s1.shape}/{s2.shape}")
    r1 = _sqrtm_psd(s1)
    cross = np.linalg.eigvalsh(r1 @ s2 @ r1)
    tr_cross = float(np.sqrt(np.clip(cross, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_cross)


def frechet_distance(feats_a: np.ndarray | torch.Tensor,
                     feats_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``[Na, D]``, ``[Nb, D]``
    (sample mean, unbiased sample covariance), as in FID.

    When a set has fewer samples than dimensions, the cross term
    ``tr((S_a^½ S_b S_a^½)^½)`` is computed exactly as the nuclear norm of ``A Bᵀ`` /
    ``sqrt((Na - 1)(Nb - 1))`` (``A``, ``B`` the centred samples), which avoids the square
    roots of the many zero eigenvalues of rank-deficient covariances; otherwise
    :func:`gaussian_frechet_distance` is used. The estimate is biased upwards for small
    ``N``: compare numbers only at equal ``N`` and report ``N``.

    Example::

        >>> a = np.random.default_rng(0).normal(size=(5000, 2))
        >>> round(frechet_distance(a, a + 1.0), 3)      # mean shift of 1 in 2 dims
        2.0
    """
    a = feats_a.detach().cpu().double().numpy() if torch.is_tensor(feats_a) else np.asarray(
        feats_a, np.float64)
    b = feats_b.detach().cpu().double().numpy() if torch.is_tensor(feats_b) else np.asarray(
        feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two [N>=2, D] feature arrays, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    if min(len(a), len(b)) >= a.shape[1]:
        return gaussian_frechet_distance(mu_a, np.cov(a, rowvar=False),
                                         mu_b, np.cov(b, rowvar=False))
    ca, cb = a - mu_a, b - mu_b
    na, nb = len(a) - 1, len(b) - 1
    tr_a = float((ca * ca).sum()) / na
    tr_b = float((cb * cb).sum()) / nb
    tr_cross = float(np.linalg.svd(ca @ cb.T, compute_uv=False).sum()) / np.sqrt(na * nb)
    diff = mu_a - mu_b
    return float(diff @ diff + tr_a + tr_b - 2.0 * tr_cross)


class FrechetEffNetDistance:
    """Fréchet EfficientNet-Lite2 distance (FED): the FID formula on the 1280-d
    global-average-pooled head features of ImageNet EfficientNet-Lite2. Lower is closer.

    Every image (RGB or grayscale replicated, in [0, 1]) is resized bilinearly (antialiased)
    to ``input_size`` x ``input_size`` (default 128) before the network. Not comparable with
    Inception FID values; biased for small sets (see :func:`frechet_distance`): with fewer
    than ~1280 images the covariance is rank deficient; report ``N`` with the number.

    Example::

        >>> fed = FrechetEffNetDistance(input_size=64)
        >>> real, fake = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 64, 64)
        >>> value = fed(real, fake)           # float
    """

    def __init__(self, variant: str = "lite2", input_size: int = 128, batch_size: int = 64,
                 net: nn.Module | None = None) -> None:
        from gsc_semantic.efficientnet_lite import efficientnet_lite

        if net is None:
            net = efficientnet_lite(variant, pretrained=True).requires_grad_(False)
        self.net = net.eval()
        self.input_size = input_size
        self.batch_size = batch_size
        self.name = f"Fréchet EfficientNet-{self.net.variant.capitalize()} distance"

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """Pooled features ``[N, 1280]`` (float64 numpy) of ``[N, C, H, W]`` images in [0, 1]."""
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            x = to_rgb(images[i:i + self.batch_size].float().to(_device_of(self.net)))
            x = _resize(x, (self.input_size, self.input_size))
            out.append(self.net.features(x, stages=()).pooled.double().cpu().numpy())
        return np.concatenate(out)

    def __call__(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        return frechet_distance(self.features(real), self.features(fake))


class ClassifierAgreement:
    """Top-1 class agreement between originals and reconstructions, per image (1.0 when the
    classifier's arg-max class is the same for both, else 0.0).

    :param classifier: callable mapping ``[N, C, H, W]`` images to ``[N, K]`` scores
        (e.g. an :class:`~gsc_semantic.efficientnet_lite.EfficientNetLite`, or a
        Fashion-MNIST classifier); called under ``torch.no_grad()``.

    Example::

        >>> clf = lambda x: x.flatten(1)[:, :10]          # toy "classifier"
        >>> agree = ClassifierAgreement(clf)
        >>> x = torch.rand(3, 1, 28, 28)
        >>> agree(x, x)
        tensor([1., 1., 1.])
    """

    def __init__(self, classifier: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int = 256) -> None:
        self.classifier = classifier
        self.batch_size = batch_size

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Top-1 class indices ``[N]``."""
        return torch.cat([self.classifier(images[i:i + self.batch_size]).argmax(-1)
                          for i in range(0, images.shape[0], self.batch_size)])

    def __call__(self, original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        original, reconstruction = _as_batch(original, reconstruction)
        return (self.predict(original) == self.predict(reconstruction)).float()


def confusion_matrix(pred_mask: torch.Tensor, true_mask: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """``[num_classes, num_classes]`` pixel counts, rows = true class, columns = predicted.

    Example::

        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    if pred_mask.shape != true_mask.shape:
        raise ValueError(f"masks must have the same shape, got {tuple(pred_mask.shape)} and "
                         f"{tuple(true_mask.shape)}")
    p, t = pred_mask.reshape(-1).long(), true_mask.reshape(-1).long()
    keep = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    p, t = p[keep], t[keep]
    if p.numel() and (min(p.min(), t.min()) < 0 or max(p.max(), t.max()) >= num_classes):
        raise ValueError(f"mask values must lie in 0..{num_classes - 1}")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).view(
        num_classes, num_classes)


def iou_per_class(pred_mask: torch.Tensor, true_mask: torch.Tensor, num_classes: int,
                  ignore_index: int | None = None) -> torch.Tensor:
    """Intersection over union per class over all pixels given (float64 ``[num_classes]``);
    NaN for classes absent from both masks.

    Example::

        >>> iou_per_class(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 3)
        tensor([0.5000, 0.5000,    nan], dtype=torch.float64)
    """
    cm = confusion_matrix(pred_mask, true_mask, num_classes, ignore_index).double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, torch.nan))


def miou(pred_mask: torch.Tensor, true_mask: torch.Tensor, num_classes: int,
         ignore_index: int | None = None) -> float:
    """Mean intersection over union: the mean of :func:`iou_per_class` over classes present
    in the prediction or the truth (classes absent from both are left out). Pixels of all
    masks given are pooled (dataset-level IoU, not a mean of per-image mIoUs).

    Example::

        >>> miou(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]), 4)
        0.5833333333333333
    """
    iou = iou_per_class(pred_mask, true_mask, num_classes, ignore_index)
    present = ~torch.isnan(iou)
    if not present.any():
        raise ValueError("masks are empty (every pixel ignored)")
    return float(iou[present].mean())
