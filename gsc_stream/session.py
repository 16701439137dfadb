"""A persistent streaming session: one loopback flowgraph and decoder service for many
transmissions.

:func:`gsc_stream.loopback.run_loopback` starts the flowgraph (radio interpreter) and the
decoder service for one transmission and stops them at its end: 7-20 s of process start,
torch import and drain per transmission. A :class:`LoopbackSession` starts them once for one
grid (modulation, k, n) and one channel model (model, impairments) and keeps them up, Es/N0
set per transmission:
:meth:`LoopbackSession.send` streams one transmission's frames and returns its accounting,
:meth:`LoopbackSession.close` (or leaving the ``with`` block) sends end-of-stream and stops both
process groups.

**Telling transmissions apart.** The first :data:`~gsc_stream.stream_decode.SEQ_BITS` bits
of each payload are its frame number. In a session frame numbers run on across
transmissions: transmission ``i``'s frames are numbered ``base_i .. base_i + n_i - 1``
(:meth:`send` rewrites the numbers of the payloads it is given, 0 .. n - 1, to these), so a
decoded frame names its transmission. A decoded frame whose number belongs to an earlier
transmission (late, or a duplicate burst) is never counted for the current one: it is
counted in the session's ``stale_results``.

**Ending a transmission.** The flowgraph only emits samples when frames arrive, so the last
bursts of a transmission could sit in the channel emulator's and the synchroniser's buffers
until the next transmission pushes them out. After its last frame, :meth:`send` therefore
sends :data:`FILLERS` filler frames (random payloads numbered from :data:`FILLER_BASE` up,
never counted). The transmission ends when every frame is accounted for, when a filler comes
back decoded (the flowgraph and a single decoder worker keep order: everything sent before
it has been handled), or when no result has arrived for :data:`QUIET_S` seconds after the
fillers were sent.

**Loss accounting.** ``frames_sent == frames_decoded + sum(frames_lost)`` per transmission,
as in ``run_loopback``; decoded and lost are exact (by frame number). The causes: ``late``
(``deadline_ms``) and ``undetected_error`` are exact; ``crc_failed`` counts bursts that
failed CRC while the transmission was open (a burst that fails CRC carries no readable frame
number, so a filler or a straggler of the previous transmission failing CRC then is counted
here too; the count is capped by the frames lost); the flowgraph's and decoder's own
counters (``queue_overflow``, ``decoder_absent``, ``decoder_dropped``, ``result_lost``) are
written once per session (``OUT/session.json``), so per transmission the rest is
``not_detected``.

**Channel draws.** The channel emulator and the TX gap generator are seeded once, when the
session starts (with the ``seed`` given), and run on across its transmissions: the noise and
fading a transmission sees depend on what the session sent before it. A run is reproducible
(same transmissions in the same order, same seeds), a single transmission is not
reproducible on its own; ``run_loopback`` (one flowgraph per transmission, seeded per
transmission) remains for that.

Example (needs GNU Radio)::

    with LoopbackSession(snr_db=10, modulation="qpsk", k=1024, n=2048) as s:
        r = s.send(payloads)        # [frames, codewords, payload_bits], numbered 0..frames-1
        r["frames_decoded"], r["frames_lost"]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from bridge.common import REPO_ROOT, ConfigError
from bridge.reliable import SeenFilter
from bridge.transport import Puller, Pusher
from bridge.wire import PayloadKind
from flowgraphs.gsc_ofdm.messages import eos_frame, set_frame, tx_frame
from gsc_phy.config import LinkConfig

from .losses import attribute_losses
from .processes import ChildFailed, check_child, radio_python_or_error, read_json, terminate

__all__ = ["LoopbackSession", "FILLER_BASE", "FILLERS", "QUIET_S", "renumber"]

FLOWGRAPH = os.path.join(REPO_ROOT, "flowgraphs", "gsc_loopback_gen.py")
#: Frame numbers from here up are fillers (never a transmission's frames).
FILLER_BASE = 0xF0000000
#: Filler frames sent after each transmission's last frame.
FILLERS = 2
#: Fewest seconds without a result, after the fillers were sent, that end a transmission; the
#: session waits longer (twice the longest send-to-result latency it has seen, at most
#: :data:`QUIET_MAX_S`) when its frames take longer to decode.
QUIET_S = 1.0
QUIET_MAX_S = 15.0
#: Seconds without a result, while frames are in flight, after which the oldest is presumed
#: lost (so that a full window of lost frames cannot stall the sender).
STALL_S = 2.0


def renumber(payloads: np.ndarray, base: int) -> np.ndarray:
    """A copy of ``payloads`` [frames, codewords, payload_bits] whose frame ``i`` starts with
    the frame number ``base + i`` (MSB-first, :data:`~gsc_stream.stream_decode.SEQ_BITS`
    bits).

    >>> from gsc_stream.stream_decode import payload_seq
    >>> p = renumber(np.zeros((2, 1, 40), np.uint8), 7)
    >>> payload_seq(p[0]), payload_seq(p[1])
    (7, 8)
    """
    from .stream_decode import SEQ_BITS

    out = np.array(payloads, dtype=np.uint8, copy=True)
    flat = out.reshape(out.shape[0], -1)
    seq = (np.arange(out.shape[0], dtype=np.uint64) + np.uint64(base))[:, None]
    flat[:, :SEQ_BITS] = (seq >> np.arange(SEQ_BITS - 1, -1, -1, dtype=np.uint64)) & 1
    return flat.reshape(out.shape)


class LoopbackSession:
    """One loopback flowgraph and decoder service kept up across transmissions (see the
    module notes).

    :param snr_db, channel, cfo, sfo_ppm, delay, delay_spread_ns: the channel emulator, as
        :func:`~gsc_stream.loopback.run_loopback` (``snr_db``: at the start; :meth:`send`
        may change it per transmission).
    :param modulation, k, n: the grid's MCS (one grid per session).
    :param workers: Decoder worker processes (>= 1).
    :param window: Frames in flight without an answer.
    :param seed: Seed of the channel emulator and the TX gaps (once, at the start).
    :param out_dir: Logs, stats and ``session.json`` (a temporary folder when None, removed
        on close).
    :param timeout_s: Most seconds one transmission may take.
    :param deadline_ms: A frame decoded later than this after it was sent counts as ``late``.
    :param start: Start the processes now (else on the first :meth:`send`).
    """

    def __init__(self, *, snr_db: float = 20.0, channel: str = "awgn", cfo: float = 0.1,
                 sfo_ppm: float = 10.0, delay: float = 3.37, delay_spread_ns: float = 100.0,
                 modulation: str = "qpsk", k: int = 1024, n: int = 2048, workers: int = 1,
                 window: int = 16, seed: int = 0, out_dir: str | None = None,
                 timeout_s: float = 600.0, deadline_ms: float | None = None,
                 start: bool = True) -> None:
        from .loopback import CHANNELS

        if workers < 1 or window < 1:
            raise ConfigError("a streaming session needs --workers >= 1 and --window >= 1")
        if channel not in CHANNELS:
            raise ConfigError(f"--channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
        if deadline_ms is not None and deadline_ms <= 0:
            raise ConfigError("--deadline-ms must be > 0")
        self.config = {"snr_db": float(snr_db), "channel": channel, "cfo_subcarriers": cfo,
                       "sfo_ppm": sfo_ppm, "timing_offset_samples": delay,
                       "delay_spread_ns": delay_spread_ns, "modulation": modulation, "k": k,
                       "n": n, "workers": workers, "window": window, "seed": seed,
                       "deadline_ms": deadline_ms}
        self.workers, self.window = int(workers), int(window)
        self.snr_db = float(snr_db)  # the channel emulator's Es/N0 now
        self.timeout_s = float(timeout_s)
        self.deadline_ns = None if deadline_ms is None else float(deadline_ms) * 1e6
        self.cfg = LinkConfig(modulation=modulation, k=k, n=n, seed=seed)
        self._own_dir = out_dir is None
        self.out_dir = tempfile.mkdtemp(prefix="gsc-session-") if out_dir is None else out_dir
        self.radio = self.dec = None
        self.results = self.src = None
        self.sock_dir = ""
        self.next_seq = 0  # first frame number of the next transmission
        self.fillers_sent = 0
        self.transmissions = 0
        self.stale_results = 0  # decoded frames of an earlier transmission (or fillers' CRC)
        self.latency_max_s = 0.0  # longest send -> result seen (sets the quiet wait)
        self.seen = SeenFilter()
        self.closed = False
        self.started = False
        self.start_s = 0.0
        self.summary: dict = {}
        if start:
            self.start()

    # ------------------------------------------------------------------ processes
    def start(self) -> None:
        """Write the grid, start the decoder service and the flowgraph, wait for the workers."""
        import torch

        from .grid_export import write_grid_json
        from .stream_decode import StreamCodec

        if self.started:
            return
        if self.closed:
            raise ConfigError("this streaming session is closed")
        self.started = True
        t0 = time.monotonic()
        radio_py = radio_python_or_error()
        c = self.config
        radio_dir = os.path.join(self.out_dir, "radio")
        dec_dir = os.path.join(self.out_dir, "decoder")
        for d in (radio_dir, dec_dir):
            os.makedirs(d, exist_ok=True)
            for f in os.listdir(d):
                if f.endswith(".json"):
                    os.remove(os.path.join(d, f))
        self.radio_dir, self.dec_dir = radio_dir, dec_dir
        grid_file = os.path.abspath(os.path.join(self.out_dir, "grid.json"))
        doc = write_grid_json(self.cfg, grid_file)
        self.format_id = int(doc["format_id"])
        self.codec = StreamCodec(self.cfg)
        self.threads = torch.get_num_threads()
        self.sock_dir = tempfile.mkdtemp(prefix="gsc-ss-")
        tx_ep, rx_ep, res_ep = (f"ipc://{self.sock_dir}/{name}.sock"
                                for name in ("tx", "rx", "res"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")]
                                                           if p])
        self.radio_log = os.path.join(self.out_dir, "radio.log")
        self.dec_log = os.path.join(self.out_dir, "decoder.log")
        try:
            self.results = Puller(res_ep, timeout_ms=50, hwm=100000)
            self.src = Pusher(tx_ep, timeout_ms=30000, hwm=self.window + FILLERS + 4)
            with open(self.dec_log, "w") as dlog:
                self.dec = subprocess.Popen(
                    [sys.executable, "-m", "gsc_stream.decoder_service", "serve", "--connect",
                     rx_ep, "--workers", str(self.workers), "--grid", grid_file, "--results",
                     res_ep, "--out", os.path.abspath(dec_dir)],
                    stdout=dlog, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                    start_new_session=True)
            with open(self.radio_log, "w") as rlog:
                self.radio = subprocess.Popen(
                    [radio_py, FLOWGRAPH, "--grid", grid_file, "--tx-endpoint", tx_ep,
                     "--rx-endpoint", rx_ep, "--snr-db", repr(float(c["snr_db"])),
                     "--cfo", repr(float(c["cfo_subcarriers"])), "--channel", c["channel"],
                     "--delay-spread-ns", repr(float(c["delay_spread_ns"])),
                     "--delay", repr(float(c["timing_offset_samples"])),
                     "--sfo-ppm", repr(float(c["sfo_ppm"])), "--seed", str(int(c["seed"])),
                     "--stats-dir", os.path.abspath(radio_dir)],
                    stdout=rlog, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                    start_new_session=True)
            ready = 0
            while ready < self.workers:
                self._check()
                if time.monotonic() - t0 > 180:
                    raise ConfigError("the decoder service did not come up within 180 s")
                obj = self._recv()
                ready += obj.get("type") == "ready"
        except BaseException:
            self.close()
            raise
        self.start_s = time.monotonic() - t0

    def _check(self) -> None:
        check_child(self.radio, "flowgraph", self.radio_log)
        check_child(self.dec, "decoder service", self.dec_log)

    def _recv(self, timeout_ms: int | None = None) -> dict:
        """The next CONTROL message from the results channel (``{}`` when none came);
        results are deduplicated by ``(stream_id, rx_seq)``."""
        msg = self.results.recv(timeout_ms=timeout_ms)
        if msg is None or msg.kind != PayloadKind.CONTROL:
            return {}
        obj = msg.json()
        if obj.get("type") == "result" and self.seen.check(int(obj.get("stream_id", 0)),
                                                           int(obj.get("rx_seq", -1))):
            return {"type": "duplicate"}
        return obj

    def _push(self, msg) -> None:
        t_try = time.monotonic()
        while not self.src.send(msg, timeout_ms=500):  # a dead peer must not hang us
            check_child(self.radio, "flowgraph", self.radio_log)
            if time.monotonic() - t_try > 30:
                raise ConfigError("the flowgraph did not take frames for 30 s")

    # ------------------------------------------------------------------ transmissions
    def send(self, payloads: np.ndarray, snr_db: float | None = None) -> dict:
        """Stream one transmission through the session and account for it.

        ``snr_db``: this transmission's Es/N0 (None: as before). A change goes to the
        flowgraph as a ``set`` CONTROL frame ahead of the first frame; the TX block tags that
        frame's burst and the channel emulator switches its noise at the tagged sample, so
        the transmission's bursts (and none before them) see the new Es/N0.

        :input payloads: uint8 0/1 [frames, codewords, payload_bits] (the first
            :data:`~gsc_stream.stream_decode.SEQ_BITS` bits are renumbered here).
        :output: ``frames_sent``, ``frames_decoded``, ``delivery``, ``frames_lost`` (by cause,
            summing to ``frames_lost_total``), ``delivered_seqs`` (indices into ``payloads``
            of frames received with every CRC-24A passing and the payload CRC-32 of what was
            sent), ``frame_results`` (decoded bursts of this transmission: ``tx_seq`` its
            index, ``ok`` per block), ``first_seq``, ``blocks``, ``block_errors``,
            ``bler``, ``evm_db``, ``latency_ms_p50``, ``fillers``, ``stale_results`` (results
            of earlier transmissions that arrived meanwhile) and ``wall_s``.
        """
        from .stream_decode import payload_crc32

        payloads = np.asarray(payloads, dtype=np.uint8)
        self.start()
        if self.closed:
            raise ConfigError("this streaming session is closed")
        cw, pb = self.codec.frame.codewords_per_frame, self.codec.frame.payload_bits_per_block
        if payloads.ndim != 3 or payloads.shape[1:] != (cw, pb) or len(payloads) < 1:
            raise ConfigError(f"payloads of shape {payloads.shape}, the session's frame "
                              f"format needs [frames >= 1, {cw}, {pb}]")
        if payloads.max(initial=0) > 1:
            raise ConfigError("payloads must hold bits (0/1)")
        nfr = len(payloads)
        base = self.next_seq
        if base + nfr >= FILLER_BASE:
            raise ConfigError("this streaming session has run out of frame numbers")
        self.next_seq += nfr
        sent_pl = renumber(payloads, base)
        want = [payload_crc32(p) for p in sent_pl]
        t0 = time.monotonic()
        stale0 = self.stale_results
        while self._take_stale(self._recv(timeout_ms=0)):  # what came in since the last one
            pass
        decoded: dict[int, dict] = {}
        t_send: dict[int, int] = {}
        crc_fail = undetected = late = 0
        blocks_ok = 0
        accounted = sent = presumed = 0
        fillers = 0
        filler_first = FILLER_BASE + self.fillers_sent  # this transmission's fillers
        filler_back = False
        last = time.monotonic()
        fill_rng = np.random.default_rng([int(self.config["seed"]), base, 0xF1])
        _, xs = self.codec.encode(sent_pl)
        try:
            if snr_db is not None and float(snr_db) != self.snr_db:
                self._push(set_frame(float(snr_db), base))
                self.snr_db = float(snr_db)
            while accounted < nfr and not filler_back:
                self._check()
                now = time.monotonic()
                if now - t0 > self.timeout_s:
                    raise ConfigError(f"transmission timed out after {self.timeout_s:.0f} s")
                if sent < nfr and sent - accounted < self.window:
                    t_send[sent] = time.time_ns()
                    self._push(tx_frame(xs[sent], base + sent, self.format_id))
                    sent += 1
                    continue
                if sent == nfr and fillers < FILLERS:
                    seq = FILLER_BASE + self.fillers_sent
                    pl = fill_rng.integers(0, 2, (1, cw, pb), dtype=np.uint8)
                    _, xf = self.codec.encode(renumber(pl, seq))
                    self._push(tx_frame(xf[0], seq, self.format_id))
                    self.fillers_sent += 1
                    fillers += 1
                    last = time.monotonic()
                    continue
                obj = self._recv()
                now = time.monotonic()
                if obj.get("type") != "result":
                    quiet = min(QUIET_MAX_S, max(QUIET_S, 2.0 * self.latency_max_s))
                    if sent == nfr and now - last > quiet:
                        break  # flushed and quiet: the rest is lost
                    if sent < nfr and now - last > STALL_S and accounted < sent:
                        accounted += 1  # presume the oldest frame in flight lost
                        presumed += 1
                        last = now
                    continue
                if sent == nfr:  # a gap between results once all is sent: decode time
                    self.latency_max_s = max(self.latency_max_s, now - last)
                last = now
                ok = obj.get("ok") or []
                seq = obj.get("tx_seq")
                if not all(ok):
                    crc_fail += 1
                    blocks_ok += sum(bool(v) for v in ok)
                    accounted += 1
                    continue
                if seq is not None and seq >= FILLER_BASE:
                    # this transmission's filler is back: with one worker all before it is
                    filler_back = seq >= filler_first and self.workers == 1
                    continue
                i = None if seq is None else int(seq) - base
                if i is not None and i < 0:
                    self.stale_results += 1  # a frame of an earlier transmission
                    continue
                if i is None or i >= nfr or obj.get("payload_crc32") != want[i]:
                    undetected += 1
                    accounted += 1
                    continue
                if i in decoded:
                    continue  # one frame detected as two bursts: counted once
                accounted += 1
                blocks_ok += len(ok)
                self.latency_max_s = max(self.latency_max_s,
                                         (obj["t_done_ns"] - t_send[i]) / 1e9)
                if self.deadline_ns is not None and obj["t_done_ns"] - t_send[i] > self.deadline_ns:
                    late += 1
                    decoded[i] = {}
                    continue
                decoded[i] = obj
        except ChildFailed as e:
            self.summary["failed"] = {"process": e.process, "detail": str(e)}
            self.close()
            raise
        decoded = {i: r for i, r in decoded.items() if r}
        lost = nfr - len(decoded)
        causes = attribute_losses(lost, {"late": late, "undetected_error": undetected,
                                         "crc_failed": crc_fail})
        blocks = nfr * cw
        lat = np.array([(r["t_done_ns"] - t_send[i]) / 1e6 for i, r in decoded.items()])
        evm = [10 ** (r["evm_db"] / 10) for r in decoded.values() if r.get("evm_db") is not None]
        self.transmissions += 1
        return {
            "snr_db": self.snr_db,
            "frames_sent": nfr,
            "frames_decoded": len(decoded),
            "delivery": len(decoded) / nfr,
            "frames_lost": causes,
            "frames_lost_total": lost,
            "delivered_seqs": sorted(decoded),
            "frame_results": [{"tx_seq": i, "ok": [bool(v) for v in r.get("ok") or []],
                               "crc_match": True} for i, r in sorted(decoded.items())],
            "first_seq": base,
            "blocks": blocks,
            "block_errors": blocks - min(blocks_ok, blocks),
            "bler": (blocks - min(blocks_ok, blocks)) / blocks,
            "evm_db": float(10 * np.log10(np.mean(evm))) if evm else None,
            "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
            "presumed_lost": presumed,
            "fillers": fillers,
            "stale_results": self.stale_results - stale0,
            "wall_s": time.monotonic() - t0,
        }

    def _take_stale(self, obj: dict) -> bool:
        """Count a result that arrived between transmissions (it belongs to an earlier one);
        False when there was none."""
        if not obj:
            return False
        if obj.get("type") == "result":
            self.stale_results += 1
        return True

    # ------------------------------------------------------------------ end
    def close(self) -> dict:
        """End-of-stream to the flowgraph, stop it and the decoder service (their process
        groups), write ``OUT/session.json``; returns its dict. Idempotent."""
        if self.closed:
            return self.summary
        self.closed = True
        try:
            if self.src is not None and self.radio is not None and self.radio.poll() is None:
                self.src.send(eos_frame(self.next_seq), timeout_ms=500)
                t_eos = time.monotonic()
                while self.radio.poll() is None and time.monotonic() - t_eos < 10:
                    self._take_stale(self._recv(timeout_ms=100))
        finally:
            terminate(self.radio, 5)
            terminate(self.dec, 20)
            if self.results is not None:
                self.results.close()
            if self.src is not None:
                self.src.close(linger_ms=0)
            if self.sock_dir:
                shutil.rmtree(self.sock_dir, ignore_errors=True)
        if self.started:
            self.summary.update({
                "config": self.config, "snr_kind": "esno", "seed": self.config["seed"],
                "transmissions": self.transmissions, "frames_numbered": self.next_seq,
                "fillers_sent": self.fillers_sent, "stale_results": self.stale_results,
                "duplicates_suppressed": self.seen.duplicates, "start_s": self.start_s,
                "radio": {name: read_json(os.path.join(self.radio_dir, f"{name}.json"))
                          for name in ("tx", "channel", "rx")},
                "decoder": read_json(os.path.join(self.dec_dir, "decoder.json")),
            })
            if not self._own_dir:
                with open(os.path.join(self.out_dir, "session.json"), "w",
                          encoding="utf-8") as fh:
                    json.dump(self.summary, fh, indent=2)
        if self._own_dir:
            shutil.rmtree(self.out_dir, ignore_errors=True)
        return self.summary

    def children(self) -> list[int]:
        """Process ids of the flowgraph and the decoder service (while they run)."""
        return [p.pid for p in (self.radio, self.dec) if p is not None and p.poll() is None]

    def __enter__(self) -> LoopbackSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
