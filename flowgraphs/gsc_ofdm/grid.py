"""The gsc resource grid on the radio side: which RE carries data, which a pilot, which nothing.

:class:`GridLayout` loads the JSON written by ``gsc_stream.grid_export`` (Sionna's
``ResourceGrid`` and pilot pattern, exported on the ML side) and maps data symbols onto the
grid and back, with numpy only (numpy 1.24 and 2.x).

Conventions (Sionna's): a grid is ``[streams, num_ofdm_symbols, fft_size]`` with FFT bin 0
the lowest frequency and DC at ``fft_size // 2``; data symbols fill the non-pilot effective
REs OFDM-symbol-major, subcarrier-minor.

>>> lay = GridLayout.load()
>>> lay.fft_size, lay.num_ofdm_symbols, lay.num_data_symbols
(72, 28, 1536)
>>> x = np.ones((1, lay.num_data_symbols), np.complex64)
>>> np.allclose(lay.extract(lay.map(x)), x)
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["GridLayout", "GridError", "GRIDS_DIR", "grid_path"]

GRIDS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grids")
_FORMAT = "gsc-resource-grid"
_VERSION = 1


class GridError(ValueError):
    """A grid JSON document is missing, malformed or of another version."""


def grid_path(name: str = "default") -> str:
    """Path of a shipped grid (``default`` = QPSK, LDPC (1024, 2048); ``16qam``) or ``name``
    itself when it is an existing file."""
    if os.path.isfile(name):
        return name
    path = os.path.join(GRIDS_DIR, f"{name}.json")
    if not os.path.isfile(path):
        shipped = sorted(f[:-5] for f in os.listdir(GRIDS_DIR) if f.endswith(".json"))
        raise GridError(f"no grid file {name!r} (shipped: {', '.join(shipped)})")
    return path


@dataclass(frozen=True, eq=False)
class GridLayout:
    """Resource grid layout of one gsc frame (see the module docstring).

    :param fft_size: FFT size N.
    :param cp_length: Cyclic prefix length (samples).
    :param num_ofdm_symbols: OFDM symbols per frame.
    :param num_streams: Spatial streams S.
    :param subcarrier_spacing_hz: Subcarrier spacing.
    :param effective_subcarriers: [F_eff] FFT bins of the used subcarriers.
    :param pilot_mask: [S, T, F_eff] bool, ``True`` on pilot REs.
    :param pilots: [S, P] complex pilot values in mask order.
    :param frame: Frame sizes from the JSON (``bits_per_symbol``, ``k``, ``n``, ...).
    :param config: The link configuration fields the grid was exported from.
    :param format_id: CRC-32 identifier of the document.
    """

    fft_size: int
    cp_length: int
    num_ofdm_symbols: int
    num_streams: int
    subcarrier_spacing_hz: float
    effective_subcarriers: np.ndarray
    pilot_mask: np.ndarray
    pilots: np.ndarray
    frame: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    format_id: int = 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GridLayout:
        """Build from a parsed grid document; :class:`GridError` if it does not fit."""
        try:
            if doc.get("format") != _FORMAT:
                raise GridError(f"not a gsc grid document (format {doc.get('format')!r})")
            if doc.get("version") != _VERSION:
                raise GridError(f"grid version {doc.get('version')} (expected {_VERSION})")
            fft = int(doc["fft_size"])
            eff = np.asarray(doc["effective_subcarriers"], dtype=np.int64)
            mask = np.array(
                [[[c == "1" for c in row] for row in stream] for stream in doc["pilot_mask"]],
                dtype=bool,
            )
            pilots = np.asarray(doc["pilots_re"], np.float64) + 1j * np.asarray(
                doc["pilots_im"], np.float64
            )
            lay = cls(
                fft_size=fft,
                cp_length=int(doc["cp_length"]),
                num_ofdm_symbols=int(doc["num_ofdm_symbols"]),
                num_streams=int(doc["num_streams"]),
                subcarrier_spacing_hz=float(doc["subcarrier_spacing_hz"]),
                effective_subcarriers=eff,
                pilot_mask=mask,
                pilots=pilots.astype(np.complex64),
                frame=dict(doc.get("frame", {})),
                config=dict(doc.get("config", {})),
                format_id=int(doc.get("format_id", 0)),
            )
        except GridError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise GridError(f"malformed grid document: {type(e).__name__}: {e}") from None
        lay._validate()
        return lay

    @classmethod
    def load(cls, path: str = "default") -> GridLayout:
        """Load a grid JSON file (a path or the name of a shipped grid)."""
        path = grid_path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, json.JSONDecodeError) as e:
            raise GridError(f"cannot read grid {path}: {e}") from None
        return cls.from_dict(doc)

    def _validate(self) -> None:
        s, t, f = self.num_streams, self.num_ofdm_symbols, len(self.effective_subcarriers)
        if self.pilot_mask.shape != (s, t, f):
            raise GridError(f"pilot_mask shape {self.pilot_mask.shape} != {(s, t, f)}")
        if self.pilots.shape != (s, int(self.pilot_mask[0].sum())):
            raise GridError(f"pilots shape {self.pilots.shape} does not match the mask")
        if not (self.pilot_mask == self.pilot_mask[:1]).all():
            raise GridError("streams must share one data/pilot mask (Sionna's rule)")
        eff = self.effective_subcarriers
        if eff.min() < 0 or eff.max() >= self.fft_size or len(set(eff.tolist())) != f:
            raise GridError("effective subcarriers out of range or repeated")
        if not 0 <= self.cp_length < self.fft_size:
            raise GridError("cyclic prefix must be shorter than the FFT")

    # ------------------------------------------------------------------ sizes
    @property
    def num_effective_subcarriers(self) -> int:
        return int(len(self.effective_subcarriers))

    @property
    def num_data_symbols(self) -> int:
        """Data symbols per stream and frame."""
        return int((~self.pilot_mask[0]).sum())

    @property
    def symbol_length(self) -> int:
        """Samples per OFDM symbol, cyclic prefix included."""
        return self.fft_size + self.cp_length

    @property
    def samp_rate_hz(self) -> float:
        """Sample rate of the time-domain signal (``fft_size * subcarrier_spacing``)."""
        return self.fft_size * self.subcarrier_spacing_hz

    @property
    def pilot_symbol_indices(self) -> np.ndarray:
        """OFDM symbols that hold pilots."""
        return np.nonzero(self.pilot_mask[0].any(axis=1))[0]

    @property
    def bits_per_symbol(self) -> int:
        return int(self.frame.get("bits_per_symbol", 2))

    # ------------------------------------------------------------------ mapping
    def _data_flat(self) -> np.ndarray:
        """Flat [T*F_eff] indices of data REs (symbol-major)."""
        return np.flatnonzero(~self.pilot_mask[0].reshape(-1))

    def _pilot_flat(self) -> np.ndarray:
        return np.flatnonzero(self.pilot_mask[0].reshape(-1))

    def map(self, data: np.ndarray) -> np.ndarray:
        """Data symbols [..., S, Nd] -> full grid [..., S, T, fft_size] (pilots in, nulls 0)."""
        data = np.asarray(data)
        s, nd = self.num_streams, self.num_data_symbols
        if data.shape[-2:] != (s, nd):
            raise GridError(f"data shape {data.shape} does not end in ({s}, {nd})")
        lead = data.shape[:-2]
        t, f = self.num_ofdm_symbols, self.num_effective_subcarriers
        eff = np.zeros(lead + (s, t * f), np.complex64)
        eff[..., self._data_flat()] = data
        eff[..., self._pilot_flat()] = self.pilots
        grid = np.zeros(lead + (s, t, self.fft_size), np.complex64)
        grid[..., self.effective_subcarriers] = eff.reshape(lead + (s, t, f))
        return grid

    def effective(self, grid: np.ndarray) -> np.ndarray:
        """Full grid [..., T, fft_size] -> effective subcarriers [..., T, F_eff]."""
        return np.asarray(grid)[..., self.effective_subcarriers]

    def extract(self, grid: np.ndarray) -> np.ndarray:
        """Data REs of a grid: [..., T, fft_size] (or [..., T, F_eff]) -> [..., Nd]."""
        grid = np.asarray(grid)
        if grid.shape[-1] == self.fft_size:
            grid = self.effective(grid)
        flat = grid.reshape(grid.shape[:-2] + (-1,))
        return flat[..., self._data_flat()]

    def pilot_grid(self) -> np.ndarray:
        """[S, T, F_eff] pilot values (0 on data REs and on zero pilots)."""
        s, t, f = self.pilot_mask.shape
        out = np.zeros((s, t * f), np.complex64)
        out[:, self._pilot_flat()] = self.pilots
        return out.reshape(s, t, f)
