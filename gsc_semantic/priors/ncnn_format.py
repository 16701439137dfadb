"""Reader (and a small writer) for ncnn model files: the ``.param`` text graph and the
``.bin`` weight blob, in plain numpy, with no ncnn runtime.

``.param`` (text form): a magic line ``7767517``, a line ``layer_count blob_count``, then one
line per layer::

    Type  name  n_inputs n_outputs  input_blob... output_blob...  k=v k=v ...

``k`` is a parameter id in 0..31 and ``v`` an integer, or a float when the text holds ``.``,
``e`` or ``E``; an array parameter is written with the key ``-23300 - k`` and the value
``n,v1,...,vn`` (e.g. ``-23310=1,2.000000e-01`` is parameter 10 = ``[0.2]``).

``.bin``: the weights of the layers that have any, concatenated in graph order, with no
header. Each layer reads its arrays in a fixed order. An array read in "auto" mode starts
with a 4-byte tag: ``0x01306B47`` float16, ``0x000D4B38`` int8, ``0x0002C056`` or ``0``
float32, any other value an 8-bit index table (256 float32 values, then one uint8 index per
element); data are padded to 4 bytes. An array read in "raw" mode is float32 with no tag.

======================  ====================================  ====================
layer                   arrays in the .bin (params: sizes)    weight shape
======================  ====================================  ====================
Convolution             weight (auto, 6), bias (raw, 0)       [out, in, kh, kw]
ConvolutionDepthWise    as Convolution, 7 = groups            [out, in/g, kh, kw]
Deconvolution(DW)       as Convolution, ncnn's order          [out, in/g, kh, kw]
InnerProduct            weight (auto, 2), bias (raw, 0)       [out, in]
PReLU                   slope (raw, 0)                        [num_slope]
======================  ====================================  ====================

Biases are present when the bias_term parameter (5, InnerProduct 1) is 1. PyTorch's
``ConvTranspose2d`` weight is [in, out/g, kh, kw]: transpose ncnn's Deconvolution weight.

Int8-quantised layers (``8=`` int8_scale_term) and other weight-bearing layer types
(BatchNorm, Scale, ...) are refused with :class:`ValueError` rather than misread.

Example::

    >>> import tempfile, os, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> layers = [NcnnLayer("Input", "in", (), ("data",), {}),
    ...           NcnnLayer("Convolution", "c", ("data",), ("output",),
    ...                     {0: 2, 1: 3, 4: 1, 5: 1, 6: 2 * 3 * 9})]
    >>> w = {"c": LayerWeights(np.ones((2, 3, 3, 3), np.float32), np.zeros(2, np.float32))}
    >>> p, b = os.path.join(d, "m.param"), os.path.join(d, "m.bin")
    >>> write_ncnn(p, b, layers, w)
    >>> model = read_ncnn(p, b)
    >>> model.weights["c"].weight.shape, model.graph.input_blobs, model.graph.output_blobs
    ((2, 3, 3, 3), ('data',), ('output',))
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MAGIC",
    "TAG_FP16",
    "TAG_INT8",
    "TAG_FP32_SCALED",
    "WEIGHT_LAYERS",
    "NcnnLayer",
    "NcnnGraph",
    "LayerWeights",
    "NcnnModel",
    "parse_param",
    "read_param",
    "read_bin",
    "read_ncnn",
    "format_param",
    "write_ncnn",
    "insert_splits",
    "canonical_graph",
    "check_topology",
]

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_SCALED = 0x0002C056
_ARRAY_BASE = -23300
_MAX_PARAM = 32

#: layer types whose weights this module reads from a ``.bin``
WEIGHT_LAYERS = ("Convolution", "ConvolutionDepthWise", "Deconvolution",
                 "DeconvolutionDepthWise", "InnerProduct", "PReLU")

# layer types known to carry no weights in the .bin (anything else is refused when reading
# weights: its layout is unknown, and reading past it would misalign every later layer)
_WEIGHTLESS = frozenset({
    "AbsVal", "ArgMax", "BinaryOp", "BNLL", "Cast", "Clip", "Concat", "Crop", "Dequantize",
    "DepthToSpace", "Dropout", "ELU", "Eltwise", "Erf", "Exp", "ExpandDims", "Flatten",
    "GELU", "HardSigmoid", "HardSwish", "Input", "Interp", "Log", "LRN", "Mish", "MVN",
    "Noop", "Packing", "Padding", "Permute", "PixelShuffle", "Pooling", "Power",
    "Reduction", "ReLU", "Reorg", "Reshape", "SELU", "ShuffleChannel", "Sigmoid", "Slice",
    "Softmax", "Softplus", "SpaceToDepth", "Split", "Squeeze", "Swish", "TanH", "Threshold",
    "Tile", "UnaryOp",
})

ParamValue = int | float | tuple[int | float, ...]


@dataclass(frozen=True)
class NcnnLayer:
    """One layer line of a ``.param`` file.

    :param type: ncnn layer type (``"Convolution"``, ``"Split"``, ...)
    :param name: layer name
    :param inputs: names of the blobs it reads
    :param outputs: names of the blobs it writes
    :param params: parameter id -> int, float, or tuple (array parameter)
    """

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue] = field(default_factory=dict)

    def get(self, key: int, default: ParamValue | None = None) -> ParamValue | None:
        """Parameter ``key``, or ``default`` when the line does not set it."""
        return self.params.get(key, default)


@dataclass(frozen=True)
class NcnnGraph:
    """A parsed ``.param`` file: layers in file (= execution) order.

    :param layers: the layers
    :param blob_count: the blob count declared on the second line
    """

    layers: tuple[NcnnLayer, ...]
    blob_count: int

    @property
    def input_blobs(self) -> tuple[str, ...]:
        """Blobs written by ``Input`` layers (what ``Extractor.input`` takes)."""
        return tuple(b for lay in self.layers if lay.type == "Input" for b in lay.outputs)

    @property
    def output_blobs(self) -> tuple[str, ...]:
        """Blobs that no layer reads (the graph's outputs), in order of appearance."""
        read = {b for lay in self.layers for b in lay.inputs}
        return tuple(b for lay in self.layers for b in lay.outputs if b not in read)

    def of_type(self, *types: str) -> list[NcnnLayer]:
        """The layers of the given types, in graph order."""
        return [lay for lay in self.layers if lay.type in types]

    def type_counts(self) -> dict[str, int]:
        """How many layers of each type."""
        out: dict[str, int] = {}
        for lay in self.layers:
            out[lay.type] = out.get(lay.type, 0) + 1
        return out


@dataclass(frozen=True)
class LayerWeights:
    """The arrays one layer reads from the ``.bin`` (float32 numpy arrays).

    :param weight: Convolution family [out, in/groups, kh, kw]; InnerProduct [out, in];
        PReLU the slopes [num_slope]
    :param bias: [out], or ``None`` without a bias term
    :param storage: how the weight was stored: ``"float16"``, ``"float32"``, ``"table8"``
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    storage: str = "float32"


@dataclass(frozen=True)
class NcnnModel:
    """A ``.param`` graph and its weights, keyed by layer name in graph order."""

    graph: NcnnGraph
    weights: dict[str, LayerWeights]


# ---------------------------------------------------------------- .param


def _parse_scalar(text: str, where: str) -> int | float:
    try:
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None


def parse_param(text: str, source: str = "<string>") -> NcnnGraph:
    """Parse the text of an ncnn ``.param`` file.

    :param text: file contents
    :param source: a name for error messages
    :output: :class:`NcnnGraph`
    :raises ValueError: wrong magic, counts, a bad ``k=v``, a blob read before it is
        written, a blob written twice

    Example::

        >>> g = parse_param("7767517\\n2 2\\nInput in 0 1 data\\nReLU r 1 1 data out\\n")
        >>> [lay.type for lay in g.layers], g.output_blobs
        (['Input', 'ReLU'], ('out',))
    """
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0] != str(MAGIC):
        found = lines[0][:40] if lines else "an empty file"
        raise ValueError(f"{source}: not an ncnn param file (magic {MAGIC} expected, "
                         f"found {found!r})")
    if len(lines) < 2:
        raise ValueError(f"{source}: missing the 'layer_count blob_count' line")
    counts = lines[1].split()
    if len(counts) != 2 or not all(c.isdigit() for c in counts):
        raise ValueError(f"{source}: line 2 must be 'layer_count blob_count', "
                         f"found {lines[1]!r}")
    layer_count, blob_count = int(counts[0]), int(counts[1])
    body = lines[2:]
    if len(body) != layer_count:
        raise ValueError(f"{source}: declares {layer_count} layers but has {len(body)} "
                         f"layer lines")
    layers = []
    written: set[str] = set()
    for lineno, line in enumerate(body, start=3):
        where = f"{source}:{lineno}"
        tok = line.split()
        if len(tok) < 4 or not tok[2].isdigit() or not tok[3].isdigit():
            raise ValueError(f"{where}: expected 'type name n_in n_out ...', found {line!r}")
        ltype, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
        if len(tok) < 4 + n_in + n_out:
            raise ValueError(f"{where}: layer {name!r} lists fewer blobs than {n_in}+{n_out}")
        inputs = tuple(tok[4:4 + n_in])
        outputs = tuple(tok[4 + n_in:4 + n_in + n_out])
        if any("=" in b for b in inputs + outputs):
            raise ValueError(f"{where}: layer {name!r} lists fewer blobs than {n_in}+{n_out}")
        params: dict[int, ParamValue] = {}
        for kv in tok[4 + n_in + n_out:]:
            k, sep, v = kv.partition("=")
            if not sep or not re.fullmatch(r"-?\d+", k):
                raise ValueError(f"{where}: bad parameter {kv!r} in layer {name!r}")
            key = int(k)
            if key <= _ARRAY_BASE:
                key = _ARRAY_BASE - key
                items = v.split(",")
                n = _parse_scalar(items[0], where)
                if not isinstance(n, int) or n != len(items) - 1:
                    raise ValueError(f"{where}: array parameter {kv!r} in layer {name!r} "
                                     f"declares {items[0]} values, has {len(items) - 1}")
                value: ParamValue = tuple(_parse_scalar(x, where) for x in items[1:])
            else:
                value = _parse_scalar(v, where)
            if not 0 <= key < _MAX_PARAM:
                raise ValueError(f"{where}: parameter id {k} out of range in layer {name!r}")
            params[key] = value
        for b in inputs:
            if b not in written:
                raise ValueError(f"{where}: layer {name!r} reads blob {b!r} that no earlier "
                                 f"layer writes")
        for b in outputs:
            if b in written:
                raise ValueError(f"{where}: blob {b!r} written twice (layer {name!r})")
            written.add(b)
        layers.append(NcnnLayer(ltype, name, inputs, outputs, params))
    if len(written) > blob_count:
        raise ValueError(f"{source}: declares {blob_count} blobs but uses {len(written)}")
    consumed: dict[str, str] = {}
    for lay in layers:
        for b in lay.inputs:
            if b in consumed:
                raise ValueError(f"{source}: blob {b!r} read by both {consumed[b]!r} and "
                                 f"{lay.name!r} (ncnn needs a Split layer)")
            consumed[b] = lay.name
    return NcnnGraph(tuple(layers), blob_count)


def read_param(path: str | os.PathLike) -> NcnnGraph:
    """Read an ncnn ``.param`` text file (see :func:`parse_param`).

    :raises ValueError: a malformed file (including a binary ``.param.bin``)
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{os.fspath(path)}: not an ncnn text param file "
                         f"(non-ASCII bytes)") from None
    return parse_param(text, os.fspath(path))


def _fmt_value(v: int | float) -> str:
    if isinstance(v, bool) or isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):e}"


def format_param(graph: NcnnGraph | Sequence[NcnnLayer]) -> str:
    """The ``.param`` text of a graph (inverse of :func:`parse_param`)."""
    layers = graph.layers if isinstance(graph, NcnnGraph) else tuple(graph)
    blobs = {b for lay in layers for b in lay.inputs + lay.outputs}
    out = [str(MAGIC), f"{len(layers)} {len(blobs)}"]
    for lay in layers:
        tok = [f"{lay.type:<24}", f"{lay.name:<24}", str(len(lay.inputs)),
               str(len(lay.outputs)), *lay.inputs, *lay.outputs]
        for k in sorted(lay.params):
            v = lay.params[k]
            if isinstance(v, (tuple, list)):
                tok.append(f"{_ARRAY_BASE - k}={len(v)}," + ",".join(_fmt_value(x) for x in v))
            else:
                tok.append(f"{k}={_fmt_value(v)}")
        out.append(" ".join(tok))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- .bin


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 0, source

    def _take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"{self.source}: truncated: {what} needs {n} bytes at offset "
                             f"{self.pos}, the file has {len(self.data)}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def raw(self, n: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(4 * n, what), "<f4").astype(np.float32)

    def auto(self, n: int, what: str) -> tuple[np.ndarray, str]:
        tag = int(np.frombuffer(self._take(4, what), "<u4")[0])
        if tag == TAG_FP16:
            buf = self._take(_align4(2 * n), what)
            return np.frombuffer(buf[:2 * n], "<f2").astype(np.float32), "float16"
        if tag == TAG_INT8:
            raise ValueError(f"{self.source}: {what} holds int8-quantised weights "
                             f"(tag 0x{tag:08X} at offset {self.pos - 4}); not supported")
        if tag in (0, TAG_FP32_SCALED):
            return self.raw(n, what), "float32"
        table = self.raw(256, what)
        idx = np.frombuffer(self._take(_align4(n), what)[:n], np.uint8)
        return table[idx], "table8"


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def _int_param(lay: NcnnLayer, key: int, default: int, source: str) -> int:
    v = lay.params.get(key, default)
    if not isinstance(v, int):
        raise ValueError(f"{source}: layer {lay.name!r} ({lay.type}) parameter {key} must "
                         f"be an integer, found {v!r}")
    return v


def _read_layer(r: _Reader, lay: NcnnLayer, source: str) -> LayerWeights | None:
    what = f"layer {lay.name!r} ({lay.type})"
    if lay.type == "PReLU":
        n = _int_param(lay, 0, 0, source)
        if n <= 0:
            raise ValueError(f"{source}: {what}: num_slope must be > 0")
        return LayerWeights(r.raw(n, what + " slope"), None, "float32")
    if lay.type == "InnerProduct":
        nout, has_bias, size = (_int_param(lay, k, 0, source) for k in (0, 1, 2))
        if _int_param(lay, 8, 0, source):
            raise ValueError(f"{source}: {what} is int8-quantised; not supported")
        if nout <= 0 or size <= 0 or size % nout:
            raise ValueError(f"{source}: {what}: weight_data_size {size} is not a multiple "
                             f"of num_output {nout}")
        w, storage = r.auto(size, what + " weight")
        b = r.raw(nout, what + " bias") if has_bias else None
        return LayerWeights(w.reshape(nout, size // nout), b, storage)
    if lay.type in ("Convolution", "ConvolutionDepthWise", "Deconvolution",
                    "DeconvolutionDepthWise"):
        nout = _int_param(lay, 0, 0, source)
        kw = _int_param(lay, 1, 0, source)
        kh = _int_param(lay, 11, kw, source)
        has_bias = _int_param(lay, 5, 0, source)
        size = _int_param(lay, 6, 0, source)
        dyn_key = 28 if lay.type.startswith("Deconvolution") else 19
        if _int_param(lay, dyn_key, 0, source):
            return None  # dynamic weights arrive as a second input blob, nothing in the .bin
        if lay.type.startswith("Convolution") and _int_param(lay, 8, 0, source):
            raise ValueError(f"{source}: {what} is int8-quantised; not supported")
        per_out = nout * kh * kw
        if nout <= 0 or kh <= 0 or kw <= 0 or size <= 0 or size % per_out:
            raise ValueError(f"{source}: {what}: weight_data_size {size} is not a multiple "
                             f"of num_output*kh*kw = {nout}*{kh}*{kw}")
        w, storage = r.auto(size, what + " weight")
        b = r.raw(nout, what + " bias") if has_bias else None
        return LayerWeights(w.reshape(nout, size // per_out, kh, kw), b, storage)
    if lay.type in _WEIGHTLESS:
        return None
    raise ValueError(f"{source}: layer {lay.name!r} has type {lay.type!r}, whose .bin layout "
                     f"this reader does not know (it reads {', '.join(WEIGHT_LAYERS)} and "
                     f"weightless layers)")


def read_bin(path: str | os.PathLike, graph: NcnnGraph) -> dict[str, LayerWeights]:
    """Read the weights of every weight-bearing layer of ``graph`` from a ``.bin`` file.

    :param path: the ``.bin`` file
    :param graph: its graph, from :func:`read_param`
    :output: layer name -> :class:`LayerWeights`, in graph order
    :raises ValueError: truncated file, trailing bytes, an unsupported layer or storage
    """
    source = os.fspath(path)
    with open(path, "rb") as f:
        r = _Reader(f.read(), source)
    out: dict[str, LayerWeights] = {}
    for lay in graph.layers:
        lw = _read_layer(r, lay, source)
        if lw is not None:
            out[lay.name] = lw
    if r.pos != len(r.data):
        raise ValueError(f"{source}: {len(r.data) - r.pos} trailing bytes after the last "
                         f"layer's weights (the .bin does not belong to this .param)")
    return out


def read_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike) -> NcnnModel:
    """Read a ``.param`` / ``.bin`` pair (see :func:`read_param`, :func:`read_bin`)."""
    graph = read_param(param_path)
    return NcnnModel(graph, read_bin(bin_path, graph))


def write_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike,
               graph: NcnnGraph | Sequence[NcnnLayer], weights: Mapping[str, LayerWeights],
               *, fp16: bool = True) -> None:
    """Write a ``.param`` / ``.bin`` pair that ncnn (and :func:`read_ncnn`) loads.

    :param graph: the layers; blobs read by several layers need Split layers
        (see :func:`insert_splits`)
    :param weights: layer name -> arrays, for every weight-bearing layer
    :param fp16: store Convolution/InnerProduct weights as float16 (biases and PReLU
        slopes stay float32, as ncnn reads them raw)
    """
    layers = graph.layers if isinstance(graph, NcnnGraph) else tuple(graph)
    text = format_param(layers)
    parse_param(text, os.fspath(param_path))  # validate before writing anything
    chunks: list[bytes] = []
    for lay in layers:
        if lay.type in _WEIGHTLESS:
            continue
        if lay.type not in WEIGHT_LAYERS:
            raise ValueError(f"write_ncnn: layer type {lay.type!r} is not supported")
        if lay.name not in weights:
            raise ValueError(f"write_ncnn: no weights for layer {lay.name!r}")
        lw = weights[lay.name]
        w = np.asarray(lw.weight, np.float32).ravel()
        if lay.type == "PReLU":
            if w.size != lay.params.get(0):
                raise ValueError(f"write_ncnn: {lay.name!r}: {w.size} slopes, param 0 says "
                                 f"{lay.params.get(0)}")
            chunks.append(w.astype("<f4").tobytes())
            continue
        size_key, bias_key = (2, 1) if lay.type == "InnerProduct" else (6, 5)
        if w.size != lay.params.get(size_key):
            raise ValueError(f"write_ncnn: {lay.name!r}: weight has {w.size} values, param "
                             f"{size_key} says {lay.params.get(size_key)}")
        if fp16:
            half = w.astype("<f2").tobytes()
            chunks += [np.uint32(TAG_FP16).astype("<u4").tobytes(), half,
                       b"\0" * (_align4(len(half)) - len(half))]
        else:
            chunks += [b"\0\0\0\0", w.astype("<f4").tobytes()]
        if lay.params.get(bias_key, 0):
            b = np.asarray(lw.bias, np.float32).ravel()
            if b.size != lay.params.get(0):
                raise ValueError(f"write_ncnn: {lay.name!r}: bias has {b.size} values")
            chunks.append(b.astype("<f4").tobytes())
    with open(param_path, "w", encoding="ascii") as f:
        f.write(text)
    with open(bin_path, "wb") as f:
        f.write(b"".join(chunks))


# ---------------------------------------------------------------- topology


def insert_splits(layers: Sequence[NcnnLayer]) -> list[NcnnLayer]:
    """Make a graph whose blobs may feed several layers valid for ncnn, by adding a
    ``Split`` layer after each such blob's producer (named as ncnn's converters do:
    ``<blob>_splitncnn_<k>``)."""
    readers: dict[str, int] = {}
    for lay in layers:
        for b in lay.inputs:
            readers[b] = readers.get(b, 0) + 1
    seen: dict[str, int] = {}

    def rename(b: str) -> str:
        if readers.get(b, 0) < 2:
            return b
        k = seen.get(b, 0)
        seen[b] = k + 1
        return f"{b}_splitncnn_{k}"

    out: list[NcnnLayer] = []
    n_split = 0
    for lay in layers:
        out.append(NcnnLayer(lay.type, lay.name, tuple(rename(b) for b in lay.inputs),
                             lay.outputs, dict(lay.params)))
        for b in lay.outputs:
            if readers.get(b, 0) > 1:
                copies = tuple(f"{b}_splitncnn_{k}" for k in range(readers[b]))
                out.append(NcnnLayer("Split", f"splitncnn_{n_split}", (b,), copies, {}))
                n_split += 1
    return out


_CONV_TYPES = ("Convolution", "ConvolutionDepthWise", "Deconvolution",
               "DeconvolutionDepthWise")
# parameter defaults, dropped before comparing so that "4=0" and no "4=" compare equal
_DEFAULTS: dict[str, dict[int, ParamValue]] = {
    "Convolution": {2: 1, 3: 1, 4: 0, 5: 0, 8: 0, 9: 0, 18: 0.0, 19: 0},
    "ConvolutionDepthWise": {2: 1, 3: 1, 4: 0, 5: 0, 7: 1, 8: 0, 9: 0, 18: 0.0, 19: 0},
    "Deconvolution": {2: 1, 3: 1, 4: 0, 5: 0, 9: 0, 18: 0, 19: 0, 20: 0, 21: 0, 28: 0},
    "DeconvolutionDepthWise": {2: 1, 3: 1, 4: 0, 5: 0, 7: 1, 9: 0, 18: 0, 19: 0, 20: 0,
                               21: 0, 28: 0},
    "BinaryOp": {0: 0, 1: 0, 2: 0.0},
    "Eltwise": {0: 0},
    "Interp": {0: 0, 1: 1.0, 2: 1.0, 3: 0, 4: 0, 5: 0, 6: 0},
    "PixelShuffle": {0: 1, 1: 0},
    "Concat": {0: 0},
    "InnerProduct": {1: 0, 8: 0, 9: 0},
    "Input": {0: 0, 1: 0, 2: 0},
}


def _normalise(lay: NcnnLayer) -> dict[int, ParamValue]:
    p = dict(lay.params)
    if lay.type in _CONV_TYPES:
        # the *_h / pad_right / pad_bottom ids default to their *_w / pad_left / pad_top ones
        for hk, wk in ((11, 1), (12, 2), (13, 3), (14, 4), (15, 4)):
            if hk in p and p[hk] == p.get(wk, _DEFAULTS[lay.type].get(wk)):
                del p[hk]
        if 16 in p and p[16] == p.get(14, p.get(4, 0)):
            del p[16]
        if p.get(9, 0) == 0:
            p.pop(10, None)
    for k, v in _DEFAULTS.get(lay.type, {}).items():
        if k in p and p[k] == v:
            del p[k]
    return p


def _same_value(a: ParamValue, b: ParamValue) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        a = a if isinstance(a, tuple) else (a,)
        b = b if isinstance(b, tuple) else (b,)
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)


def canonical_graph(graph: NcnnGraph | Sequence[NcnnLayer]
                    ) -> list[tuple[str, str, tuple[tuple[int, int], ...], dict[int, ParamValue]]]:
    """The graph with Split layers removed and blobs named by their producer.

    :output: one ``(type, name, inputs, params)`` per non-Split layer, where each input is
        ``(index of the producing layer in this list, index of its output)`` and ``params``
        has the default-valued entries removed. Two files that describe the same network
        with other blob names, other Split placement or explicit defaults compare equal.
    """
    layers = graph.layers if isinstance(graph, NcnnGraph) else tuple(graph)
    alias: dict[str, str] = {}
    producer: dict[str, tuple[int, int]] = {}
    out = []
    for lay in layers:
        if lay.type == "Split":
            src = alias.get(lay.inputs[0], lay.inputs[0])
            for b in lay.outputs:
                alias[b] = src
            continue
        ins = tuple(producer[alias.get(b, b)] for b in lay.inputs)
        for k, b in enumerate(lay.outputs):
            producer[b] = (len(out), k)
        out.append((lay.type, lay.name, ins, _normalise(lay)))
    return out


def check_topology(found: NcnnGraph | Sequence[NcnnLayer],
                   expected: NcnnGraph | Sequence[NcnnLayer], source: str = "graph") -> None:
    """Raise :class:`ValueError` at the first layer where ``found`` differs from
    ``expected`` (compared as :func:`canonical_graph`: types, wiring, parameters).

    :param source: a name for the error message (e.g. the ``.param`` path)
    """
    a, b = canonical_graph(found), canonical_graph(expected)
    count_a, count_b = Counter(x[0] for x in a), Counter(x[0] for x in b)
    if count_a != count_b:
        raise ValueError(f"{source}: layer counts {dict(count_a)} (Splits left out), the "
                         f"expected architecture has {dict(count_b)}")
    for i, (fa, fb) in enumerate(zip(a, b, strict=False)):
        ta, na, ia, pa = fa
        tb, nb, ib, pb = fb
        what = f"{source}: layer {i} (non-Split) {na!r}"
        if ta != tb:
            raise ValueError(f"{what} is {ta}, the expected architecture has {tb} ({nb!r})")
        if ia != ib:
            raise ValueError(f"{what} ({ta}) reads {ia}, expected {ib} "
                             f"((layer, output) pairs of the Split-free graph)")
        if pa.keys() != pb.keys() or not all(_same_value(pa[k], pb[k]) for k in pa):
            raise ValueError(f"{what} ({ta}) has parameters {pa}, expected {pb}")
