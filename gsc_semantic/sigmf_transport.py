"""``--link sigmf:DIR``: a scenario's transmissions recorded as SigMF IQ and decoded from it.

:class:`SigMFTransport` is the recorded counterpart of
:class:`~gsc_semantic.stream_transport.StreamTransport` (same frames: a 32-bit frame number and
the stream bits per payload, same erasures, same counters). Every transmission (method, layer,
MCS, Es/N0) becomes one recording ``DIR/NAME.sigmf-data`` + ``.sigmf-meta``, named after it
(``road_snr10_gsc-uep_tx2``: scenario, Es/N0, method, transmission of that method), and
``DIR/manifest.json`` names each recording's transmission: method, SNR, channel, MCS
(modulation, k, n), frames, the CRC-32 of every sent payload, seed, sample count and SHA-512,
plus the run's configuration (scenario options, channel, seed, emulator settings).

**Recording: where the IQ comes from.** The IQ is the signal the loopback flowgraph
(``flowgraphs/gsc_loopback_gen.py``) hands from its channel emulator to its receiver: the
frames are encoded by gsc_phy (:class:`~gsc_stream.stream_decode.StreamCodec`), turned into OFDM
bursts with random gaps by :class:`~flowgraphs.gsc_ofdm.tx.BurstStream` and sent through
:class:`~flowgraphs.gsc_ofdm.channel.ChannelEmulator` - the numpy code that the flowgraph's
``ofdm_burst_tx`` and ``channel_emulator`` blocks run, with the flowgraph's arguments and seeds
(gaps 64..512 samples seeded by the transmission seed, emulator seed + 1, block fading per
burst for ``tdl-*``, CFO 0.1 subcarrier, 10 ppm sampling offset, 3.37-sample timing offset,
Es/N0 per resource element: noise variance ``10^(-snr/10)`` per sample, as ``gsc loopback``).
The loopback flowgraph fuses TX, channel and RX in one GNU Radio process with no tap between
channel and receiver; running the blocks' own code in this process gives the same signal,
reproducible from the seed, in about a second per transmission and with nothing to
synchronise, so it is what records. Each sent frame is annotated (estimated first sample,
frame number, payload CRC-32).

**Decoding: always from the recording.** Right after recording, and on every later run, the
recording is replayed through the GNU Radio streaming receiver exactly as ``gsc rx --radio
sigmf:DIR/NAME`` does (:func:`gsc_stream.radio_link.run_rx`: SigMF device flowgraph -> ``gsc_rx``
modem flowgraph -> decoder service). A frame arrives when all of its CRC-24A blocks passed and
its decoded payload CRC-32 equals the manifest's; any other decoded frame is erased and counted
(``undetected_error``), frames never decoded are ``not_detected`` or ``crc_failed`` (see
:data:`gsc_stream.loopback.LOSS_CAUSES`). :meth:`take` returns StreamTransport's counters
(``loopback_s``: seconds spent recording and replaying) plus ``recordings_made``,
``recordings_replayed`` and ``record_s``.

**Record or replay.** A DIR without ``manifest.json`` is recorded into ("recording to DIR").
A DIR whose manifest holds the same configuration is replayed ("replaying N recordings from
DIR"); a transmission it does not hold yet (an interrupted recording run) is recorded and
added. A different configuration, a recording made from other payloads than this run sends,
or a missing / truncated / corrupted recording stops with one
:class:`~bridge.common.ConfigError` line (exit code 2) naming the file; ``rerecord=True``
(``--rerecord``) deletes the recordings the manifest lists and records anew.

Example (needs GNU Radio)::

    t = SigMFTransport("runs/rec", "awgn", scenario="road", config={"snr_db": [10]})
    rx, ok = t.send(bits, budget)      # records runs/rec/road_snr10_m0_tx1, then replays it
    t.take()["recordings_made"]        # 1
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.common import ConfigError
from gsc_phy.config import LinkConfig
from gsc_semantic.stream_transport import StreamTransport

if TYPE_CHECKING:
    from gsc_semantic.baselines import LinkBudget

__all__ = ["SigMFTransport", "record_transmission", "replay_transmission", "MANIFEST",
           "MANIFEST_FORMAT"]

#: The manifest's file name inside DIR.
MANIFEST = "manifest.json"
#: ``format`` of the manifests this module writes.
MANIFEST_FORMAT = "gsc-sigmf-link/1"
#: The loopback flowgraph's burst gaps (``gsc_loopback_gen.py`` defaults).
GAP_MIN, GAP_MAX = 64, 512
_CHUNK = 1 << 15  # samples per emulator call (as in a GNU Radio work call)
_RERUN = "use a new DIR or --rerecord"


def _sha512_of(base: str) -> str | None:
    from hardware.sigmf_io import read_recording

    return read_recording(base, verify_hash=False).global_info.get("core:sha512")


def record_transmission(base: str, payloads: np.ndarray, *, modulation: str, k: int, n: int,
                        seed: int, snr_db: float, channel: str = "awgn",
                        delay_spread_ns: float = 100.0, cfo: float = 0.1,
                        sfo_ppm: float = 10.0, delay: float = 3.37,
                        extra_global: dict[str, Any] | None = None) -> dict[str, Any]:
    """Encode ``payloads``, send them through the loopback's TX and channel emulator code
    (see the module notes) and store the channel output as the SigMF recording ``base``.

    :input payloads: uint8 [frames, codewords, payload_bits] (frame numbers first).
    :output: ``{"samples", "sha512", "seconds"}`` of the recording.

    Example (writes ``/tmp/x.sigmf-*``)::

        record_transmission("/tmp/x", p, modulation="qpsk", k=1024, n=2048, seed=1,
                            snr_db=10.0)
    """
    import torch

    from flowgraphs.gsc_ofdm.channel import ChannelEmulator
    from flowgraphs.gsc_ofdm.grid import GridLayout
    from flowgraphs.gsc_ofdm.tx import BurstModulator, BurstStream
    from gsc_stream.grid_export import export_grid
    from gsc_stream.stream_decode import StreamCodec, payload_crc32
    from hardware.sigmf_io import FrameAnnotation, RecordingError, write_recording

    t0 = time.monotonic()
    cfg = LinkConfig(modulation=modulation, k=k, n=n, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        layout = GridLayout.from_dict(export_grid(cfg))
        codec = StreamCodec(cfg)
        symbols = np.concatenate([codec.encode(payloads[i:i + 64])[1]
                                  for i in range(0, len(payloads), 64)])
    finally:
        torch.set_num_threads(threads)
    mod = BurstModulator(layout)
    stream = BurstStream(mod, GAP_MIN, GAP_MAX, seed)
    emu = ChannelEmulator(snr_db=float(snr_db), cfo=cfo, fft_size=layout.fft_size,
                          channel=channel, delay_spread_s=delay_spread_ns * 1e-9,
                          samp_rate_hz=layout.samp_rate_hz, delay=delay, sfo_ppm=sfo_ppm,
                          fading="block", seed=seed + 1)
    for seq, x in enumerate(symbols):
        stream.push(x, seq)
    tail = GAP_MAX + 4 * layout.symbol_length  # flush the emulator's filters
    starts: list[int] = []
    out: list[np.ndarray] = []
    while stream.pending:
        x, bursts = stream.read(_CHUNK)
        first = stream.samples_out - len(x)
        starts += [off for off, _, _ in bursts]
        out.append(emu.process(x, [off - first for off, _, _ in bursts]))
    out.append(emu.process(np.zeros(tail, np.complex64)))
    samples = np.concatenate(out)
    shift, ratio = delay + emu.group_delay, 1.0 + sfo_ppm * 1e-6
    last = len(samples) - mod.burst_length
    notes = [FrameAnnotation(max(0, min(int(round((off + shift) / ratio)), last)),
                             mod.burst_length, seq=seq,
                             comment=f"payload_crc32={payload_crc32(payloads[seq])}")
             for seq, off in enumerate(starts)]
    try:
        write_recording(base, samples, sample_rate_hz=layout.samp_rate_hz,
                        hw="gsc loopback channel emulator", annotations=notes,
                        description="gsc scenario transmission (--link sigmf)",
                        extra_global=extra_global or {}, overwrite=True)
    except RecordingError as e:
        raise ConfigError(str(e)) from None
    return {"samples": int(len(samples)), "sha512": _sha512_of(base),
            "seconds": time.monotonic() - t0}


def check_recording(base: str, entry: dict[str, Any]) -> None:
    """:class:`ConfigError` naming the file unless recording ``base`` is readable, whole
    (size and SHA-512 as the metadata says) and the one the manifest ``entry`` names."""
    from hardware.sigmf_io import FRAME_LABEL, RecordingError, read_recording

    try:
        rec = read_recording(base)
    except RecordingError as e:
        msg = str(e)
        name = os.path.basename(base)
        raise ConfigError(msg if name in msg else f"{base}: {msg}") from None
    if rec.global_info.get("core:sha512") != entry.get("sha512"):
        raise ConfigError(f"{rec.meta_path}: not the recording the manifest names (SHA-512 "
                          f"differs); {_RERUN}")
    frames = sum(a.get("core:label") == FRAME_LABEL for a in rec.annotations)
    if frames != entry["frames"]:
        raise ConfigError(f"{rec.meta_path}: annotates {frames} frames, the manifest "
                          f"{entry['frames']}; {_RERUN}")


def replay_transmission(base: str, entry: dict[str, Any], *, workers: int = 1,
                        out_dir: str | None = None) -> dict[str, Any]:
    """Decode recording ``base`` through the GNU Radio streaming receiver (``gsc rx --radio
    sigmf:``) and check every frame against the manifest ``entry``'s payload CRC-32s.

    :output: ``frames_sent``, ``frames_decoded``, ``frames_lost_total``, ``frames_lost`` (by
        cause, adding up), ``delivered_seqs`` (frame numbers whose decoded payload CRC-32
        equals the manifest's) and the receiver's ``rx`` summary.
    """
    from gsc_stream.radio_link import run_rx

    check_recording(base, entry)
    want = {i: int(c) for i, c in enumerate(entry["payload_crc32"])}
    with tempfile.TemporaryDirectory(prefix="gsc-sigmf-") as tmp:
        r = run_rx(f"sigmf:{base}", workers=workers, modulation=entry["modulation"],
                   k=int(entry["k"]), n=int(entry["n"]), seed=int(entry["seed"]),
                   out_dir=out_dir or tmp, expected_crcs=want)
    delivered = sorted({f["seq"] for f in r["frames"]
                        if f["seq"] in want and f["payload_crc32"] == want[f["seq"]]})
    return {"frames_sent": len(want), "frames_decoded": len(delivered),
            "frames_lost_total": len(want) - len(delivered), "frames_lost": r["frames_lost"],
            "delivered_seqs": delivered, "rx": r}


def _load_manifest(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON: {_RERUN}") from None
    ok = (isinstance(doc, dict) and doc.get("format") == MANIFEST_FORMAT
          and isinstance(doc.get("config"), dict) and isinstance(doc.get("recordings"), list)
          and all(isinstance(e, dict) and isinstance(e.get("name"), str)
                  for e in doc["recordings"]))
    if not ok:
        raise ConfigError(f"{path} is not a gsc recording manifest ({MANIFEST_FORMAT}): "
                          f"{_RERUN}")
    return doc


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Dotted path of the first difference between two JSON values (None: equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            d = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if d:
                return d
        return None
    return None if a == b else f"{where or 'value'}: {json.dumps(a)} there, {json.dumps(b)} now"


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


class SigMFTransport(StreamTransport):
    """Transport blocks through recordings of the streamed link (see the module notes).

    :param directory: Folder of the recordings and ``manifest.json`` (created).
    :param channel: Loopback channel emulator model (``awgn``, ``tdl-a`` .. ``tdl-e``).
    :param scenario: Scenario name (first part of the recording names).
    :param config: The scenario's configuration (SNRs, images, ...): a DIR recorded with
        another one is refused.
    :param rerecord: Delete the recordings a manifest in ``directory`` lists and record anew.
    :param seed, delay_spread_ns, workers, out_dir, echo: as :class:`StreamTransport`
        (``out_dir``: each replay's rx.json and logs, ``OUT/NAME``).
    :param cfo, sfo_ppm, delay: The loopback channel emulator's impairments.

    :input bits, budget, channel_seed: as :meth:`StreamTransport.send`.
    :output: (received bits, block_ok [B]).
    """

    kind = "sigmf"

    def __init__(self, directory: str, channel: str = "awgn", *, scenario: str = "scenario",
                 config: dict[str, Any] | None = None, rerecord: bool = False,
                 delay_spread_ns: float = 100.0, seed: int = 0, workers: int = 1,
                 out_dir: str | None = None, echo: Callable[[str], None] | None = None,
                 cfo: float = 0.1, sfo_ppm: float = 10.0, delay: float = 3.37) -> None:
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise ConfigError(f"--link sigmf:{directory}: not a folder (give a folder for the "
                              "recordings and their manifest)")
        super().__init__(channel, delay_spread_ns=delay_spread_ns, seed=seed, workers=workers,
                         out_dir=out_dir, echo=echo)
        self.directory = directory
        self.scenario = scenario
        self.emulator = {"cfo": float(cfo), "sfo_ppm": float(sfo_ppm), "delay": float(delay),
                         "delay_spread_ns": float(delay_spread_ns), "gap_min": GAP_MIN,
                         "gap_max": GAP_MAX}
        self.config = _jsonable({"scenario": scenario, "channel": channel, "seed": int(seed),
                                 "emulator": self.emulator, "scenario_config": config or {}})
        self.manifest_path = os.path.join(directory, MANIFEST)
        self._names: set[str] = set()
        self._group = 0
        self._slot: tuple = ()
        self._index = 0
        have = os.path.isfile(self.manifest_path)
        if have and rerecord:
            self._delete(_load_manifest(self.manifest_path))
            have = False
        if have:
            self.manifest = _load_manifest(self.manifest_path)
            diff = _first_difference(self.manifest["config"], self.config)
            if diff:
                raise ConfigError(f"{directory} holds recordings of another configuration "
                                  f"({diff}): {_RERUN}")
            self.recorded = {e["name"]: e for e in self.manifest["recordings"]}
            for name, entry in self.recorded.items():  # a broken file stops us now, not later
                check_recording(os.path.join(directory, name), entry)
            self.replaying = True
            self.echo(f"replaying {len(self.recorded)} recordings from {directory}")
        else:
            from gsc_phy.provenance import versions

            os.makedirs(directory, exist_ok=True)
            self.manifest = {"format": MANIFEST_FORMAT, "snr_kind": "esno",
                             "config": self.config, "versions": versions(), "recordings": []}
            self.recorded = {}
            self.replaying = False
            self.echo(f"recording to {directory}")

    # ------------------------------------------------------------------ manifest
    def _delete(self, manifest: dict[str, Any]) -> None:
        for e in manifest["recordings"]:
            for ext in (".sigmf-data", ".sigmf-meta"):
                path = os.path.join(self.directory, os.path.basename(e["name"]) + ext)
                if os.path.isfile(path):
                    os.remove(path)
        os.remove(self.manifest_path)
        self.echo(f"--rerecord: deleted {len(manifest['recordings'])} recordings in "
                  f"{self.directory}")

    def _save_manifest(self) -> None:
        tmp = self.manifest_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.manifest, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, self.manifest_path)

    def take(self) -> dict[str, float]:
        """Counters since the last ``take`` (then reset); a ``take`` also ends a method's
        group of transmissions (names without a :attr:`context` count groups)."""
        self._group += 1
        return super().take()

    def _reset(self) -> None:
        super()._reset()
        self.totals.update(recordings_made=0, recordings_replayed=0, record_s=0.0)

    def _name(self, snr_db: float) -> str:
        who = self.context or f"m{self._group}"
        slot = (who, float(snr_db), self._group)
        self._index = self._index + 1 if slot == self._slot else 1
        self._slot = slot
        name = re.sub(r"[^A-Za-z0-9.+_-]", "_",
                      f"{self.scenario}_snr{snr_db:g}_{who}_tx{self._index}")
        base, i = name, 1
        while name in self._names:
            i += 1
            name = f"{base}-{i}"
        self._names.add(name)
        return name

    # ------------------------------------------------------------------ one transmission
    def _transmit(self, payloads: np.ndarray, budget: LinkBudget, seed: int) -> dict:
        from gsc_stream.stream_decode import payload_crc32

        frame = budget.frame
        name = self._name(float(budget.snr_db))
        entry = {"name": name, "method": self.context or None,
                 "transmission": self._index, "snr_db": float(budget.snr_db),
                 "channel": self.channel, "mcs": getattr(budget.mcs, "name", None),
                 "modulation": budget.mcs.modulation, "k": int(frame.k), "n": int(frame.n),
                 "frames": int(len(payloads)),
                 "codewords_per_frame": int(frame.codewords_per_frame),
                 "payload_bits_per_block": int(frame.payload_bits_per_block),
                 "seed": int(seed),
                 "payload_crc32": [payload_crc32(p) for p in payloads]}
        base = os.path.join(self.directory, name)
        old = self.recorded.get(name)
        if old is not None:
            diff = _first_difference({k: old.get(k) for k in entry}, entry)
            if diff:
                raise ConfigError(f"{base}.sigmf-meta was recorded from other frames than this "
                                  f"run sends ({diff.split(':')[0]} differs): {_RERUN}")
            entry = old
            self.totals["recordings_replayed"] += 1
        else:
            if self.replaying:
                self.echo(f"recording {name} (not in {self.directory} yet)")
            made = record_transmission(
                base, payloads, modulation=entry["modulation"], k=entry["k"], n=entry["n"],
                seed=seed, snr_db=entry["snr_db"], channel=self.channel,
                delay_spread_ns=self.delay_spread_ns, cfo=self.emulator["cfo"],
                sfo_ppm=self.emulator["sfo_ppm"], delay=self.emulator["delay"],
                extra_global={"gsc:transmission": name, "gsc:esno_db": entry["snr_db"],
                              "gsc:channel": self.channel, "gsc:seed": int(seed)})
            entry |= {"samples": made["samples"], "sha512": made["sha512"],
                      "recorded_utc": datetime.now(UTC).isoformat(timespec="seconds")}
            self.manifest["recordings"].append(entry)
            self.recorded[name] = entry
            self._save_manifest()
            self.totals["recordings_made"] += 1
            self.totals["record_s"] += made["seconds"]
        run_dir = None if self.out_dir is None else os.path.join(self.out_dir, name)
        return replay_transmission(base, entry, workers=self.workers, out_dir=run_dir)
