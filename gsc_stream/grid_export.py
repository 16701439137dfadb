"""Export the gsc resource grid layout to JSON for the radio side (GNU Radio, numpy only).

The streaming link (``flowgraphs/gsc_ofdm``) must put data symbols and pilots on exactly the
resource elements the simulated PHY uses. This module reads them from the Sionna
``ResourceGrid`` of a :class:`~gsc_phy.frame.FrameFormat` and writes a self-contained JSON
document the radio interpreter loads without torch or Sionna:

* ``fft_size``, ``cp_length``, ``num_ofdm_symbols``, ``num_streams``,
  ``subcarrier_spacing_hz``;
* ``effective_subcarriers``: FFT bins (0 = lowest frequency, DC at ``fft_size // 2``, the
  order of Sionna's grid) of the guard- and DC-free subcarriers;
* ``pilot_mask[s][t]``: a string of ``0``/``1`` per effective subcarrier, ``1`` where the
  RE belongs to the pilot pattern of stream ``s`` (Sionna's mask; a zero pilot of another
  stream is still ``1``). Data symbols fill the ``0`` REs in OFDM-symbol-major,
  subcarrier-minor order, as Sionna's ``ResourceGridMapper`` does;
* ``pilots_re`` / ``pilots_im``: pilot values of each stream in the same order;
* ``frame``: the frame sizes (bits per symbol, constellation, ``k``, ``n``, codewords,
  padding) and ``config``: the :class:`~gsc_phy.config.LinkConfig` fields that define it;
* ``format_id``: CRC-32 of the canonical JSON of everything else (it travels as the
  ``stream_id`` of bridge messages so both ends can check they agree).

.. code-block:: python

    from gsc_phy.config import LinkConfig
    from gsc_stream.grid_export import export_grid, write_grid_json
    doc = export_grid(LinkConfig(modulation="16qam"))
    write_grid_json(LinkConfig(), "grid.json")

Command line: ``python -m gsc_stream.grid_export --mod qpsk --out grid.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from typing import Any

import numpy as np
from sionna.phy import config as sionna_config

from bridge.common import ConfigError, repo_path
from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat

__all__ = [
    "GRID_FORMAT",
    "GRID_VERSION",
    "CONFIG_FIELDS",
    "export_grid",
    "grid_json_text",
    "write_grid_json",
    "config_from_grid",
    "format_id",
    "shipped_grid_path",
]

GRID_FORMAT = "gsc-resource-grid"
GRID_VERSION = 1

#: LinkConfig fields that define the frame format (and nothing else).
CONFIG_FIELDS = (
    "modulation",
    "k",
    "n",
    "uncoded",
    "num_tx_ant",
    "num_streams",
    "fft_size",
    "subcarrier_spacing_hz",
    "cyclic_prefix_length",
    "guard_carriers",
    "dc_null",
    "pilot_symbols",
    "seed",
)


def format_id(doc: dict[str, Any]) -> int:
    """CRC-32 of the canonical JSON of ``doc`` without its ``format_id`` field."""
    body = {k: v for k, v in doc.items() if k != "format_id"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return zlib.crc32(text.encode("utf-8")) & 0xFFFFFFFF


def export_grid(cfg: LinkConfig) -> dict[str, Any]:
    """The grid layout and frame sizes of ``cfg`` as a JSON-ready dict (see module doc).

    Sionna draws the Kronecker pilots from its global generator when the grid is built;
    like :class:`~gsc_phy.link.Link`, this seeds it with ``cfg.seed`` first, so the exported
    pilots are the ones the simulation of ``cfg`` uses.

    :param cfg: Link configuration (only the frame-defining fields and ``seed`` matter).
    :output: The document, ``format_id`` included.
    """
    sionna_config.seed = cfg.seed
    ff = FrameFormat.from_config(cfg, device="cpu")
    rg = ff.resource_grid
    pp = rg.pilot_pattern
    mask = np.asarray(pp.mask.cpu().numpy())[0]  # [S, T, F_eff]
    pilots = np.asarray(pp.pilots.cpu().numpy())[0]  # [S, num_pilots]
    doc: dict[str, Any] = {
        "format": GRID_FORMAT,
        "version": GRID_VERSION,
        "fft_size": int(rg.fft_size),
        "cp_length": int(rg.cyclic_prefix_length),
        "num_ofdm_symbols": int(rg.num_ofdm_symbols),
        "num_streams": int(ff.num_streams),
        "subcarrier_spacing_hz": float(rg.subcarrier_spacing),
        "effective_subcarriers": [int(i) for i in rg.effective_subcarrier_ind],
        "pilot_mask": [
            ["".join("1" if v else "0" for v in row) for row in mask[s]]
            for s in range(mask.shape[0])
        ],
        "pilots_re": [[round(float(v), 9) for v in p.real] for p in pilots],
        "pilots_im": [[round(float(v), 9) for v in p.imag] for p in pilots],
        "frame": {
            "num_slots": ff.num_slots,
            "bits_per_symbol": ff.bits_per_symbol,
            "constellation_type": cfg.constellation_type,
            "data_symbols_per_stream": ff.data_symbols_per_stream,
            "k": ff.k,
            "n": ff.n,
            "codewords_per_frame": ff.codewords_per_frame,
            "padding_bits": ff.padding_bits,
            "payload_bits_per_block": ff.payload_bits_per_block,
            "uncoded": ff.uncoded,
        },
        "config": _config_dict(cfg),
    }
    doc["format_id"] = format_id(doc)
    return doc


def _config_dict(cfg: LinkConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CONFIG_FIELDS:
        v = getattr(cfg, name)
        out[name] = list(v) if isinstance(v, tuple) else v
    return out


def config_from_grid(doc: dict[str, Any], **overrides: Any) -> LinkConfig:
    """The :class:`LinkConfig` a grid document was exported from (plus ``overrides``)."""
    kw = dict(doc["config"])
    for name in ("guard_carriers", "pilot_symbols"):
        if name in kw:
            kw[name] = tuple(kw[name])
    # RX antennas do not define the frame; enough of them to separate its streams
    kw.setdefault("num_rx_ant", max(int(kw.get("num_tx_ant", 1)), int(kw.get("num_streams") or 1)))
    kw.update(overrides)
    return LinkConfig(**kw)


def grid_json_text(cfg: LinkConfig) -> str:
    """The grid document of ``cfg`` as pretty, stable JSON text (ends with a newline)."""
    return json.dumps(export_grid(cfg), indent=1, sort_keys=True) + "\n"


def write_grid_json(cfg: LinkConfig, path: str) -> dict[str, Any]:
    """Write the grid document of ``cfg`` to ``path``; returns the document."""
    text = grid_json_text(cfg)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return json.loads(text)


def shipped_grid_path(name: str = "default") -> str:
    """Path of a grid JSON shipped in ``flowgraphs/gsc_ofdm/grids`` (``default``, ``16qam``,
    ``mimo2x2``)."""
    return repo_path("flowgraphs", "gsc_ofdm", "grids", f"{name}.json")


#: Shipped grid files and the configs they are exported from.
SHIPPED_GRIDS: dict[str, dict[str, Any]] = {
    "default": {"modulation": "qpsk"},
    "16qam": {"modulation": "16qam"},
    "mimo2x2": {"num_tx_ant": 2, "num_rx_ant": 2},
}


def main(argv: list[str] | None = None) -> int:
    """``python -m gsc_stream.grid_export``: write one grid JSON, or refresh the shipped ones."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mod", default="qpsk", help="bpsk, qpsk, 16qam, 64qam, 256qam")
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--out", default=None, help="output JSON path")
    ap.add_argument("--shipped", action="store_true",
                    help="rewrite the grids shipped in flowgraphs/gsc_ofdm/grids")
    args = ap.parse_args(argv)
    if args.shipped:
        for name, kw in SHIPPED_GRIDS.items():
            write_grid_json(LinkConfig(**kw), shipped_grid_path(name))
            print(shipped_grid_path(name))
        return 0
    if not args.out:
        ap.error("--out is required (or --shipped)")
    try:
        doc = write_grid_json(LinkConfig(modulation=args.mod, k=args.k, n=args.n), args.out)
    except (ConfigError, OSError) as e:
        print(f"grid_export: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: format_id {doc['format_id']:#010x}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
