"""Save and load the meeting scenario's small networks and arrays (safetensors + config.json,
verified against ``checkpoints/MANIFEST.json``; never pickle).

Example::

    >>> import tempfile, torch
    >>> d = tempfile.mkdtemp()
    >>> save_module(torch.nn.Linear(2, 1), d, {"model": "Linear"})
    >>> sorted(load_module(d)[0])
    ['bias', 'weight']
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from bridge.common import ConfigError

__all__ = ["save_module", "load_module", "save_arrays", "load_arrays", "WEIGHTS", "CONFIG",
           "REBUILD_HINT"]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
REBUILD_HINT = "python -m gsc_semantic.scenarios.meeting_train"


def save_module(module: torch.nn.Module, directory: str, config: dict) -> None:
    """Write ``module``'s state dict and ``config`` to ``directory``."""
    from safetensors.torch import save_file

    os.makedirs(directory, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()},
              os.path.join(directory, WEIGHTS))
    with open(os.path.join(directory, CONFIG), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def save_arrays(arrays: dict[str, np.ndarray], directory: str, config: dict) -> None:
    """Write named numpy arrays (``model.safetensors``) and ``config`` to ``directory``."""
    save_module(_ArrayModule(arrays), directory, config)


def load_arrays(directory: str) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, config)`` of a folder written by :func:`save_arrays` (verified like
    :func:`load_module`)."""
    state, config = load_module(directory)
    return {k: v.numpy() for k, v in state.items()}, config


class _ArrayModule(torch.nn.Module):
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        for name, value in arrays.items():
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value)))


def _check_files(directory: str) -> None:
    for name in (CONFIG, WEIGHTS):
        if not os.path.isfile(os.path.join(directory, name)):
            raise ConfigError(f"checkpoint {directory!r} lacks {name}; build it with "
                              f"`{REBUILD_HINT}`")


def load_module(directory: str) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, config)`` of a checkpoint folder; a missing or corrupted one raises
    :class:`ConfigError` naming the rebuild command."""
    from safetensors.torch import load_file

    from gsc_semantic.codec import CheckpointError, verify_checkpoint

    _check_files(directory)
    try:
        verify_checkpoint(directory)
    except CheckpointError as err:
        raise ConfigError(str(err)) from err
    with open(os.path.join(directory, CONFIG)) as f:
        config = json.load(f)
    return load_file(os.path.join(directory, WEIGHTS)), config
