"""Public facade of the semantic codec: images -> layered bits -> images.

:class:`SemanticCodec` ties together the encoder (:mod:`gsc_semantic.encoder`: frozen
EfficientNet-Lite0 + projection for ``z1``, small conv encoder for the perceptual layers),
the bit-robust layered quantiser (:mod:`gsc_semantic.quantizer`) and the few-step
conditional diffusion decoder (:mod:`gsc_semantic.decoder`).

Shipped checkpoints live in ``checkpoints/<name>/`` at the repository root (override the
folder with ``GSC_CHECKPOINTS``): ``config.json`` + ``model.safetensors``, with the sha256
of every file in ``checkpoints/MANIFEST.json``, verified on load.

Example::

    >>> import torch
    >>> from gsc_semantic.codec import SemanticCodec
    >>> codec = SemanticCodec.from_pretrained("fmnist")          # shipped checkpoint
    >>> bits = codec.encode(torch.rand(2, 1, 28, 28))
    >>> codec.bits_per_layer, codec.layers_for_budget(40)
    ([4, 4, 8, 10, 12, 28, 58, 128], 5)
    >>> mask = torch.tensor([[False] * 2 + [True] * 6] * 2)     # z3..z8 lost
    >>> codec.decode(bits, mask, steps=8, seed=0).shape
    torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bridge.common import checkpoints_root
from gsc_semantic.decoder import (
    CONFIG_NAME,
    SAMPLERS,
    WEIGHTS_NAME,
    CheckpointError,
    ConditionalDiffusionDecoder,
    DecoderConfig,
    load_safetensors,
    save_safetensors,
)
from gsc_semantic.encoder import CodecEncoder
from gsc_semantic.quantizer import LayeredBits, LayeredQuantizer, LayerSpec

__all__ = [
    "CheckpointError",
    "CodecConfig",
    "SemanticCodec",
    "PRESETS",
    "MANIFEST_NAME",
    "default_checkpoint",
    "file_sha256",
    "write_manifest",
    "verify_checkpoint",
]

MANIFEST_NAME = "MANIFEST.json"
FORMAT = "gsc-semantic-codec"


@dataclass
class CodecConfig:
    """Everything needed to rebuild a :class:`SemanticCodec` (stored as ``config.json``).

    :param name: dataset / preset name (``"fmnist"``, ``"photos"``, ...).
    :param image_shape: ``(C, H, W)``.
    :param layers: the importance layers, ``z1`` first.
    :param backbone: frozen feature extractor for the semantic layer (registry name of
        :mod:`gsc_semantic.foundation`); ``backbone_size`` is its input side.
    :param enc_channels / enc_flat_channels: perceptual encoder shape.
    :param semantic_hidden: hidden width of the semantic projection (0: linear).
    :param decoder: :class:`~gsc_semantic.decoder.DecoderConfig`.
    :param default_steps / default_sampler / default_strength: what
        :meth:`SemanticCodec.decode` uses when not told.
    :param training: free-form record of how the weights were trained (command, steps,
        seed, wall time, losses).

    Example::

        >>> cfg = PRESETS["fmnist"]()
        >>> [s.num_bits for s in cfg.layers]
        [4, 4, 8, 10, 12, 28, 58, 128]
    """

    name: str
    image_shape: tuple[int, int, int]
    layers: list[LayerSpec]
    decoder: DecoderConfig
    backbone: str = "efficientnet-lite0"
    backbone_size: int = 64
    backbone_path: str | None = None
    enc_channels: tuple[int, ...] = (32, 64)
    enc_flat_channels: int = 32
    semantic_hidden: int = 0
    default_steps: int = 8
    default_sampler: str = "dpm++"
    default_strength: float = 1.0
    training: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (inverse: :meth:`from_dict`)."""
        return {
            "format": FORMAT, "version": 1, "name": self.name,
            "image_shape": list(self.image_shape),
            "layers": [s.to_dict() for s in self.layers],
            "bits_per_layer": [s.num_bits for s in self.layers],
            "backbone": self.backbone, "backbone_size": self.backbone_size,
            "backbone_path": self.backbone_path,
            "enc_channels": list(self.enc_channels),
            "enc_flat_channels": self.enc_flat_channels,
            "semantic_hidden": self.semantic_hidden,
            "default_steps": self.default_steps, "default_sampler": self.default_sampler,
            "default_strength": self.default_strength,
            "decoder": self.decoder.to_dict(), "training": self.training,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CodecConfig:
        """Rebuild from :meth:`to_dict` output."""
        if d.get("format") != FORMAT:
            raise CheckpointError(f"not a {FORMAT} config (format={d.get('format')!r})")
        return cls(
            name=d["name"], image_shape=tuple(d["image_shape"]),
            layers=[LayerSpec(**s) for s in d["layers"]],
            decoder=DecoderConfig.from_dict(d["decoder"]), backbone=d["backbone"],
            backbone_size=d["backbone_size"], backbone_path=d.get("backbone_path"),
            enc_channels=tuple(d["enc_channels"]), enc_flat_channels=d["enc_flat_channels"],
            semantic_hidden=int(d.get("semantic_hidden", 0)),
            default_steps=d["default_steps"], default_sampler=d["default_sampler"],
            default_strength=float(d.get("default_strength", 1.0)),
            training=d.get("training", {}))


def _fmnist_config() -> CodecConfig:
    # Cumulative bits 4 / 8 / 16 / 26 / 38 / 66 / 124 / 252, cut at the genie-MCS payloads
    # of one 28x28 image (gsc_semantic.baselines.AdaptiveLink.budget): on AWGN rho = 1/48
    # carries 4 bits from -3 dB, 6 at 0 dB, 16 at 5 dB, 63 at 20 dB; rho = 1/12 carries 8
    # bits at -5 dB, 26 at 0 dB, 38 at 1 dB, 66 at 5 dB, 124 at 10 dB, 253 at 20 dB (TDL-A
    # needs about 4 dB more). z1 (4 values x 1 bit, from the frozen backbone through an MLP
    # projection) is trained to be class-predictive (train.py's label loss): it is what
    # fits at rho = 1/48 and low SNR. z2..z8 are the perceptual refinement.
    layers = [LayerSpec("z1", 4, 1, "semantic"), LayerSpec("z2", 2, 2),
              LayerSpec("z3", 4, 2), LayerSpec("z4", 5, 2), LayerSpec("z5", 6, 2),
              LayerSpec("z6", 14, 2), LayerSpec("z7", 29, 2), LayerSpec("z8", 64, 2)]
    cond = sum(s.dims for s in layers) + len(layers)
    dec = DecoderConfig((1, 28, 28), cond, unshuffle=1, block_out_channels=(32, 64, 64),
                        det_channels=(64, 64, 32), cond_hidden=256)
    return CodecConfig("fmnist", (1, 28, 28), layers, dec, enc_channels=(32, 64),
                       enc_flat_channels=32, semantic_hidden=256)


def _photos_config() -> CodecConfig:
    # 128 / 384 / 896 / 1920 cumulative bits: rho = 1/48 (~150-350 bits) carries z1..z2,
    # rho = 1/12 (~700-1400 bits) carries z1..z3.
    layers = [LayerSpec("z1", 64, 2, "semantic"), LayerSpec("z2", 128, 2),
              LayerSpec("z3", 256, 2), LayerSpec("z4", 512, 2)]
    cond = sum(s.dims for s in layers) + len(layers)
    dec = DecoderConfig((3, 64, 64), cond, unshuffle=2, block_out_channels=(48, 96, 128),
                        det_channels=(128, 96, 64, 48), cond_hidden=384)
    # default_strength 0.6: with ~3200 CPU training steps, starting the sampler from the
    # noised MSE estimate is closer to the original (PSNR, EfficientNet-Lite2 distance) than
    # sampling from pure noise; pass strength=1.0 for fully generative decoding.
    return CodecConfig("photos", (3, 64, 64), layers, dec, enc_channels=(32, 64, 96, 128),
                       enc_flat_channels=64, default_strength=0.6)


#: preset name -> config factory (the shipped checkpoints use these)
PRESETS = {"fmnist": _fmnist_config, "photos": _photos_config}


class SemanticCodec(nn.Module):
    """Encoder + layered quantiser + conditional diffusion decoder.

    :param config: :class:`CodecConfig`.
    :param backbone_pretrained: False builds an untrained EfficientNet backbone (tests).

    Example::

        >>> codec = SemanticCodec(PRESETS["fmnist"](), backbone_pretrained=False)
        >>> lb = codec.encode(torch.rand(3, 1, 28, 28))
        >>> [t.shape[1] for t in lb.layers] == codec.bits_per_layer
        True
        >>> codec.decode(lb, steps=4, seed=1).shape      # untrained: noise, right shape
        torch.Size([3, 1, 28, 28])
    """

    def __init__(self, config: CodecConfig, backbone_pretrained: bool = True) -> None:
        super().__init__()
        self.config = config
        self.encoder = CodecEncoder(config.image_shape, config.layers, config.backbone,
                                    config.backbone_size, config.backbone_path,
                                    config.enc_channels, config.enc_flat_channels,
                                    backbone_pretrained=backbone_pretrained,
                                    semantic_hidden=config.semantic_hidden)
        self.quantizer = LayeredQuantizer(config.layers)
        expected = sum(s.dims for s in config.layers) + len(config.layers)
        if config.decoder.cond_dim != expected:
            raise ValueError(f"decoder cond_dim {config.decoder.cond_dim} != sum of layer "
                             f"dims + L = {expected}")
        self.decoder = ConditionalDiffusionDecoder(config.decoder)

    # ---- properties ----------------------------------------------------------------------
    @property
    def bits_per_layer(self) -> list[int]:
        """Bits per image of each layer ``z1 .. zL``."""
        return self.quantizer.bits_per_layer

    @property
    def num_layers(self) -> int:
        """Number of layers L."""
        return self.quantizer.num_layers

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images this codec takes and returns."""
        return tuple(self.config.image_shape)

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    def layers_for_budget(self, num_bits: int) -> int:
        """How many leading layers fit into ``num_bits`` bits per image (0: not even z1).

        Example::

            >>> SemanticCodec(PRESETS["fmnist"](), False).layers_for_budget(112)
            6
        """
        return self.quantizer.layers_for_budget(num_bits)

    # ---- encode / decode -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> LayeredBits:
        """Images ``[N, C, H, W]`` in [0, 1] -> :class:`LayeredBits` (uint8 0/1, MSB first).

        Example::

            >>> codec = SemanticCodec(PRESETS["fmnist"](), False)
            >>> codec.encode(torch.rand(1, 1, 28, 28)).bits_per_layer
            [4, 4, 8, 10, 12, 28, 58, 128]
        """
        was = self.training
        self.eval()
        try:
            values = self.encoder(images.to(self.device).float())
        finally:
            self.train(was)
        return self.quantizer.quantize(values)

    def dequantize(self, layers: LayeredBits | Sequence[torch.Tensor] | torch.Tensor,
                   erasure_mask: torch.Tensor | None = None
                   ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Hard bits or LLRs per layer -> ``(values per layer, erasure mask [N, L])``; see
        :meth:`gsc_semantic.quantizer.LayeredQuantizer.dequantize`.

        Example::

            >>> codec = SemanticCodec(PRESETS["fmnist"](), False)
            >>> vals, mask = codec.dequantize(codec.encode(torch.rand(1, 1, 28, 28)).layers[:1])
            >>> mask.tolist()
            [[False, True, True, True, True, True, True, True]]
        """
        return self.quantizer.dequantize(layers, erasure_mask)

    @staticmethod
    def conditioning(values: Sequence[torch.Tensor], erasure_mask: torch.Tensor
                     ) -> torch.Tensor:
        """Decoder conditioning ``[z_1 .. z_L, 1 - mask]`` (``[N, sum dims + L]``)."""
        vals = [v.masked_fill(erasure_mask[:, i:i + 1], 0.0) for i, v in enumerate(values)]
        return torch.cat(vals + [(~erasure_mask).float()], dim=1)

    @torch.no_grad()
    def decode(self, layers: LayeredBits | Sequence[torch.Tensor] | torch.Tensor,
               erasure_mask: torch.Tensor | None = None, steps: int | None = None,
               seed: int = 0, sampler: str | None = None, strength: float | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """Regenerate images from what arrived.

        :param layers: :class:`LayeredBits`, a list of per-layer ``[N, bits_l]`` tensors
            (uint8/bool hard bits, or float LLRs ``log p(1)/p(0)``: soft dequantisation),
            or one flat ``[N, bits]`` tensor of whole layers. Missing trailing layers count
            as erased.
        :param erasure_mask: ``[N, L]`` bool, True where a layer was lost (e.g. its CRC
            failed).
        :param steps: diffusion steps (default from the config, 8).
        :param seed: seed of the initial noise (same seed, same images).
        :param sampler: ``"dpm++"``, ``"ddim"`` or ``"mse"`` (deterministic head).
        :param strength: 1 generates from pure noise; below 1 starts from the noised
            deterministic estimate (see :meth:`ConditionalDiffusionDecoder.sample`); default
            from the config.
        :return: ``[N, C, H, W]`` images in [0, 1].

        Example::

            >>> codec = SemanticCodec(PRESETS["fmnist"](), False)
            >>> lb = codec.encode(torch.rand(2, 1, 28, 28))
            >>> codec.decode(lb, sampler="mse").shape
            torch.Size([2, 1, 28, 28])
        """
        steps = self.config.default_steps if steps is None else steps
        sampler = sampler or self.config.default_sampler
        strength = self.config.default_strength if strength is None else strength
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
        if isinstance(layers, LayeredBits):
            layers = layers.to(self.device)
        elif torch.is_tensor(layers):
            layers = layers.to(self.device)
        else:
            layers = [t.to(self.device) for t in layers]
        if erasure_mask is not None:
            erasure_mask = torch.as_tensor(erasure_mask).to(self.device)
        values, mask = self.dequantize(layers, erasure_mask)
        cond = self.conditioning(values, mask)
        was = self.training
        self.eval()
        try:
            gen = torch.Generator().manual_seed(int(seed))
            out = [self.decoder.sample(cond[i:i + batch_size], steps=steps, sampler=sampler,
                                       generator=gen, strength=strength)
                   for i in range(0, cond.shape[0], batch_size)]
        finally:
            self.train(was)
        return torch.cat(out)

    # ---- persistence ---------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained weights (encoder projection, perceptual encoder, decoder); the frozen
        backbone is not included."""
        return self.state_dict()

    def save_pretrained(self, directory: str | os.PathLike, half: bool = False) -> None:
        """Write ``config.json`` + ``model.safetensors`` (diffusers style); ``half`` stores
        floating-point weights as float16 (loaded back into float32 parameters).

        Example::

            >>> import tempfile
            >>> d = tempfile.mkdtemp()
            >>> SemanticCodec(PRESETS["fmnist"](), False).save_pretrained(d)
            >>> sorted(os.listdir(d))
            ['config.json', 'model.safetensors']
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, WEIGHTS_NAME + ".tmp")
        state = self.trainable_state_dict()
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_safetensors(state, tmp, metadata={"format": FORMAT})
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, WEIGHTS_NAME))
        with open(os.path.join(directory, CONFIG_NAME), "w") as f:
            json.dump(self.config.to_dict(), f, indent=2)
            f.write("\n")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, verify: bool = True,
                        map_location: str | torch.device = "cpu",
                        backbone_pretrained: bool = True) -> SemanticCodec:
        """Load a codec from a folder written by :meth:`save_pretrained`, or a shipped
        checkpoint by name (``"fmnist"``, ``"photos"``: see :func:`default_checkpoint`).
        Weights are read with safetensors only; with ``verify`` the sha256 sums of a
        ``MANIFEST.json`` in the folder or its parent are checked first.

        Example::

            >>> SemanticCodec.from_pretrained("photos").image_shape
            (3, 64, 64)
        """
        path = os.fspath(path)
        if not os.path.isdir(path) and path in PRESETS:
            path = default_checkpoint(path)
        elif verify:
            verify_checkpoint(path)
        hint = _rebuild_hint(path)
        cfg_path = os.path.join(path, CONFIG_NAME)
        if not os.path.isfile(cfg_path):
            raise CheckpointError(f"checkpoint file {cfg_path} is missing; {hint}")
        try:
            with open(cfg_path) as f:
                cfg = CodecConfig.from_dict(json.load(f))
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"checkpoint file {cfg_path} is corrupted ({err}); "
                                  f"{hint}") from err
        codec = cls(cfg, backbone_pretrained=backbone_pretrained)
        state = load_safetensors(os.path.join(path, WEIGHTS_NAME), hint)
        try:
            codec.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint file {os.path.join(path, WEIGHTS_NAME)} does "
                                  f"not match {cfg_path}: {err}; {hint}") from err
        return codec.to(map_location).eval()


# ---- shipped checkpoints -----------------------------------------------------------------
def _rebuild_command(name: str, out: str | None = None) -> str:
    return f"gsc train --data {name} --out {out or f'checkpoints/{name}'}"


def _rebuild_hint(path: str) -> str:
    name = os.path.basename(os.path.normpath(path))
    cmd = None
    manifest = Path(path).resolve().parent / MANIFEST_NAME
    if manifest.is_file():
        try:
            cmd = json.loads(manifest.read_text()).get("rebuild", {}).get(name)
        except (ValueError, OSError):
            cmd = None
    if cmd is None:
        cfg = os.path.join(path, CONFIG_NAME)
        try:
            with open(cfg) as f:
                cmd = json.load(f).get("training", {}).get("command")
        except (OSError, ValueError, AttributeError):
            cmd = None
    if cmd is None:
        if name not in PRESETS:
            return f"no rebuild command is recorded for {name!r} in {MANIFEST_NAME}"
        cmd = _rebuild_command(name, path)
    return f"rebuild it with `{cmd}`"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file.

    Example::

        >>> import tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "x"); _ = open(p, "w").write("abc")
        >>> file_sha256(p)[:16]
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(root: str | os.PathLike | None = None,
                   rebuild: dict[str, str] | None = None,
                   only: Sequence[str] | None = None) -> Path:
    """(Re)write ``MANIFEST.json`` in ``root`` (default :func:`checkpoints_root`) with the
    sha256 and size of every file below it, keeping (or updating with ``rebuild``) the
    per-checkpoint rebuild commands (codec presets get ``gsc train --data NAME`` when none
    is recorded; other checkpoints keep what their owners wrote).

    :param only: checkpoint folders (first path component) whose entries are re-hashed;
        the entries of every other folder are kept as they are in the old manifest (so a
        trainer touches only its own checkpoint's entries). None: re-hash everything.

    Example::

        >>> import tempfile
        >>> d = tempfile.mkdtemp(); os.makedirs(os.path.join(d, "m"))
        >>> _ = open(os.path.join(d, "m", "config.json"), "w").write("{}")
        >>> sorted(json.loads(write_manifest(d).read_text())["files"])
        ['m/config.json']
    """
    root = Path(root) if root is not None else checkpoints_root()
    mpath = root / MANIFEST_NAME
    old: dict = {}
    if mpath.is_file():
        try:
            old = json.loads(mpath.read_text())
        except ValueError:
            old = {}
    cmds = dict(old.get("rebuild", {}))
    cmds.update(rebuild or {})
    mine = None if only is None else set(only)
    files = {} if mine is None else {
        k: v for k, v in old.get("files", {}).items() if k.split("/")[0] not in mine}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.endswith(".tmp"):
            rel = p.relative_to(root).as_posix()
            if mine is None or rel.split("/")[0] in mine:
                files[rel] = {"sha256": file_sha256(p), "bytes": p.stat().st_size}
    files = dict(sorted(files.items()))
    for sub in {k.split("/")[0] for k in files if "/" in k}:
        if sub in PRESETS:
            cmds.setdefault(sub, _rebuild_command(sub))
    manifest = {"format": "gsc-checkpoints", "version": 1, "files": files,
                "rebuild": dict(sorted(cmds.items()))}
    mpath.write_text(json.dumps(manifest, indent=2) + "\n")
    return mpath


def verify_checkpoint(path: str | os.PathLike) -> None:
    """Check the files of checkpoint folder ``path`` against the ``MANIFEST.json`` found in
    it or in its parent (no manifest: nothing to check). A missing file or a sha256
    mismatch raises :class:`CheckpointError` naming the file and the rebuild command.

    Example::

        >>> verify_checkpoint(default_checkpoint("fmnist"))     # passes silently
    """
    path = Path(path).resolve()
    for root in (path, path.parent):
        mpath = root / MANIFEST_NAME
        if not mpath.is_file():
            continue
        try:
            manifest = json.loads(mpath.read_text())
            files = manifest["files"]
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint manifest {mpath} is corrupted ({err})") from err
        prefix = "" if root == path else path.name + "/"
        hint = _rebuild_hint(str(path))
        listed = {k: v for k, v in files.items() if k.startswith(prefix)}
        for rel, entry in listed.items():
            f = root / rel
            if not f.is_file():
                raise CheckpointError(f"checkpoint file {f} is missing; {hint}")
            if file_sha256(f) != entry["sha256"]:
                raise CheckpointError(f"checkpoint file {f} is corrupted (sha256 differs "
                                      f"from {mpath}); {hint}")
        if listed:
            return


def default_checkpoint(name: str) -> str:
    """Path of the shipped checkpoint ``name`` (``"fmnist"`` or ``"photos"``), verified
    against ``MANIFEST.json``. Missing or corrupted: :class:`CheckpointError` naming the
    file and ``gsc train --data NAME``.

    Example::

        >>> os.path.basename(default_checkpoint("fmnist"))
        'fmnist'
    """
    path = checkpoints_root() / name
    cmd = _rebuild_command(name)
    for fname in (CONFIG_NAME, WEIGHTS_NAME):
        if not (path / fname).is_file():
            raise CheckpointError(f"no shipped checkpoint {name!r}: {path / fname} is "
                                  f"missing; build it with `{cmd}`")
    verify_checkpoint(path)
    return str(path)
