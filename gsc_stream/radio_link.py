"""``gsc tx``, ``gsc rx`` and ``gsc loopback --radio``: the streaming modem on a radio profile.

The modem flowgraphs of the streaming link (``flowgraphs/gsc_tx_gen.py``,
``flowgraphs/gsc_rx_gen.py``) run under the radio interpreter with the profile's device
flowgraph between them and the radio (``python3 -m hardware.device run PROFILE --direction
tx|rx``, see hardware/README.md): a USRP, a PlutoSDR, the ZeroMQ virtual radio (one
``zmq_channel`` process with the profile's impairments) or a SigMF recording. gsc_phy encodes
the frames here and the decoder service (``python -m gsc_stream.decoder_service``) decodes what
the RX flowgraph finds.

* ``gsc tx --radio P --test-frames N | --file PATH``: modem TX (+ device TX); writes
  ``OUT/tx.json`` (frames sent, each payload's CRC-32).
* ``gsc rx --radio P [--record DIR/NAME] [--test-frames N]``: device RX + modem RX + decoder
  until the source ends (a replayed recording), ``--duration`` passes, every expected test
  frame arrived, or Ctrl-C; writes ``OUT/rx.json``: frames detected, decoded, lost by cause
  (``crc``; with ``--test-frames`` also ``not_detected``, ``undetected_error``), and each
  decoded frame's number and payload CRC-32.
* ``gsc loopback --radio P``: all of it in one command (with a ``zmq`` profile no hardware is
  involved); writes ``OUT/loopback.json`` like ``rx.json`` plus ``frames_sent``.

``--record DIR/NAME`` puts a tap between the device RX and the modem RX: every sample goes
into a SigMF recording (:class:`hardware.sigmf_io.SigMFRecorder`: device, rate, frequency,
gain, time) and, once decoding is done, one annotation per detected frame (sample start and
count from a copy of the same receiver run on the tapped samples, frame number and CRC
verdict from the decoder). ``gsc rx --radio sigmf:DIR/NAME`` replays it through the same
receiver.

Every failure - bad profile, absent or busy device, broken recording, a flowgraph that dies -
is one :class:`~bridge.common.ConfigError` line (``gsc: error: ...``, exit code 2).

.. code-block:: sh

    gsc loopback --radio zmq_impaired --frames 200 --out runs/radio-lb
    gsc rx --radio zmq_impaired --test-frames 50 --record runs/cap/impaired &
    gsc tx --radio zmq_impaired --test-frames 50
    gsc rx --radio sigmf:runs/cap/impaired --out runs/replay
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import click
import numpy as np

from bridge.common import REPO_ROOT, ConfigError
from bridge.transport import Puller, Pusher
from bridge.wire import PayloadKind
from flowgraphs.gsc_ofdm.messages import eos_frame, tx_frame
from gsc_phy.config import LinkConfig

from .losses import LOSS_CAUSES, attribute_losses
from .processes import radio_python_or_error, read_json, terminate

__all__ = ["RadioLink", "run_tx", "run_rx", "run_radio_loopback", "loopback_radio_command",
           "tx", "rx"]

TX_FLOWGRAPH = os.path.join(REPO_ROOT, "flowgraphs", "gsc_tx_gen.py")
RX_FLOWGRAPH = os.path.join(REPO_ROOT, "flowgraphs", "gsc_rx_gen.py")
_ERR = "gsc: error: "


def _error_line(log: str) -> str:
    """The radio side's own ``gsc: error:`` line in ``log``, else its last line."""
    try:
        with open(log, encoding="utf-8", errors="replace") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except OSError:
        lines = []
    errs = [ln[len(_ERR):] for ln in lines if ln.startswith(_ERR)]
    if errs:
        return errs[-1]
    return (lines[-1] if lines else "no output")[:240]


class RadioLink:
    """The processes of one radio run and their plumbing (use as a context manager).

    :param spec: Profile name, YAML path or ``sigmf:PATH``.
    :param sets: ``KEY=VALUE`` profile overrides (``--set``).
    :param out_dir: Folder for logs, stats and the result JSON.
    :param private_tx: Put the modem TX <-> device link on a private IPC endpoint (loopback);
        otherwise the profile's ``zmq.tx_endpoint`` is used, so that ``gsc tx`` and ``gsc rx``
        in two processes meet there with the ZeroMQ virtual radio.
    :param modulation, k, n, seed: Frame format and test-traffic seed.

    Starting pieces: :meth:`start_rx` (decoder, modem RX, record tap, device RX),
    :meth:`start_tx` (device TX, modem TX); :meth:`close` stops whatever runs.
    """

    def __init__(self, spec: str, sets: tuple[str, ...] = (), out_dir: str = "runs/radio",
                 private_tx: bool = False, modulation: str = "qpsk", k: int = 1024,
                 n: int = 2048, seed: int = 0) -> None:
        from hardware.cli import load_profile_spec

        self.sock_dir = tempfile.mkdtemp(prefix="gsc-radio-")
        self.eps = {name: f"ipc://{self.sock_dir}/{name}.sock"
                    for name in ("frames", "iq_tx", "iq_dev", "iq_rx", "dec", "res")}
        self.sets = tuple(sets) + (f"zmq.rx_endpoint={self.eps['iq_dev']}",)
        if private_tx:
            self.sets += (f"zmq.tx_endpoint={self.eps['iq_tx']}",)
        try:
            self.profile, self.remote = load_profile_spec(spec, self.sets)
        except ConfigError:
            shutil.rmtree(self.sock_dir, ignore_errors=True)
            raise
        self.out_dir = out_dir
        self.seed = seed
        self.cfg = LinkConfig(modulation=modulation, k=k, n=n, seed=seed)
        self.procs: dict[str, tuple[subprocess.Popen, str]] = {}
        self.tap: _RecordTap | None = None
        self.replay_frames: int | None = None  # frames a replayed recording annotates
        self.radio_py = ""
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [REPO_ROOT] + [p for p in [self.env.get("PYTHONPATH")] if p])
        os.makedirs(out_dir, exist_ok=True)
        self.stats_dir = os.path.abspath(os.path.join(out_dir, "radio"))
        self.dec_dir = os.path.abspath(os.path.join(out_dir, "decoder"))
        for d in (self.stats_dir, self.dec_dir):
            os.makedirs(d, exist_ok=True)
            for f in os.listdir(d):
                if f.endswith(".json"):
                    os.remove(os.path.join(d, f))

    # ------------------------------------------------------------------ checks
    def prepare(self, directions: tuple[str, ...]) -> None:
        """Grid file, sample-rate match, radio interpreter, and the device check (fast one
        line when the radio is absent or busy, or the recording is broken)."""
        from .grid_export import write_grid_json

        self.grid_file = os.path.abspath(os.path.join(self.out_dir, "grid.json"))
        self.grid_doc = write_grid_json(self.cfg, self.grid_file)
        fs = float(self.grid_doc["fft_size"]) * float(self.grid_doc["subcarrier_spacing_hz"])
        self.samp_rate_hz = fs
        p = self.profile
        if abs(p.samp_rate_hz - fs) > 1e-6 * fs:
            raise ConfigError(f"profile {p.name}: samp_rate_hz = {p.samp_rate_hz:g} S/s, but the "
                              f"gsc frame needs {fs:g} S/s (fft_size x subcarrier spacing); set "
                              f"samp_rate_hz: {fs:g}")
        if p.kind == "sigmf" and "rx" in directions:
            from hardware.sigmf_io import FRAME_LABEL, RecordingError, read_recording

            try:
                rec = read_recording(p.device["path"])
            except RecordingError as e:
                raise ConfigError(str(e)) from None
            annotated = sum(a.get("core:label") == FRAME_LABEL for a in rec.annotations)
            self.replay_frames = annotated or None
        self.radio_py = radio_python_or_error()
        if p.kind in ("uhd", "pluto"):
            from hardware.cli import run_radio_side

            run_radio_side(["check", self.remote, *[a for s in self.sets for a in ("--set", s)]])

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = os.path.join(self.out_dir, f"{name}.log")
        with open(log, "w") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                    cwd=REPO_ROOT, start_new_session=True)  # stopped as a group
        self.procs[name] = (proc, log)
        return proc

    def _device(self, direction: str) -> None:
        argv = [self.radio_py, "-m", "hardware.device", "run", self.remote, "--direction",
                direction]
        for s in self.sets:
            argv += ["--set", s]
        self._spawn(f"device_{direction}", argv)

    def check_alive(self, allow_done: tuple[str, ...] = ()) -> None:
        """:class:`ConfigError` with the process's own error line if one has stopped."""
        for name, (proc, log) in self.procs.items():
            rc = proc.poll()
            if rc is None or (rc == 0 and name in allow_done):
                continue
            raise ConfigError(f"{name.replace('_', ' ')} stopped (exit {rc}): {_error_line(log)}")

    def _wait_bound(self, name: str, ep: str, timeout_s: float = 60.0) -> None:
        """Wait until the process ``name`` has bound the IPC endpoint ``ep``."""
        path = ep[len("ipc://"):]
        t0 = time.monotonic()
        while not os.path.exists(path):
            self.check_alive()
            if time.monotonic() - t0 > timeout_s:
                raise ConfigError(f"{name.replace('_', ' ')} did not start within {timeout_s:g} s")
            time.sleep(0.05)

    def start_rx(self, workers: int = 1, record: str | None = None) -> None:
        """Decoder service, device RX (binds ``iq_dev``), the record tap, modem RX."""
        self.results = Puller(self.eps["res"], timeout_ms=200, hwm=100000)
        self._spawn("decoder", [sys.executable, "-m", "gsc_stream.decoder_service", "serve",
                                "--connect", self.eps["dec"], "--workers", str(workers),
                                "--grid", self.grid_file, "--results", self.eps["res"],
                                "--out", self.dec_dir])
        self._device("rx")
        self._wait_bound("device_rx", self.eps["iq_dev"])
        iq_in = self.eps["iq_dev"]
        if record:
            from flowgraphs.gsc_ofdm.grid import GridLayout

            self.tap = _RecordTap(self.eps["iq_dev"], self.eps["iq_rx"], record, self.profile,
                                  GridLayout.load(self.grid_file), self.seed)
            self.tap.start()
            iq_in = self.eps["iq_rx"]
        self._spawn("modem_rx", [self.radio_py, RX_FLOWGRAPH, "--grid", self.grid_file,
                                 "--iq-endpoint", iq_in, "--rx-endpoint", self.eps["dec"],
                                 "--stats-dir", self.stats_dir])
        ready, t0 = 0, time.monotonic()
        while ready < workers:
            self.check_alive(allow_done=("device_rx",))
            if time.monotonic() - t0 > 180:
                raise ConfigError("the decoder service did not come up within 180 s")
            msg = self.results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                ready += msg.json().get("type") == "ready"

    def start_tx(self) -> Pusher:
        """Modem TX (binds the profile's TX IQ endpoint) and, except for the ZeroMQ virtual
        radio (whose channel is the RX side's device flowgraph), the device TX flowgraph.
        Returns the frame pusher (bound at ``frames``)."""
        from hardware.device import check_bindable

        err = check_bindable(self.profile.tx_endpoint)
        if err:
            raise ConfigError(f"cannot bind {self.profile.tx_endpoint} for the modem TX ({err}): "
                              "another gsc tx running? stop it or change zmq.tx_endpoint")
        front, back = self.profile.burst_padding
        gap = max(64, front + back)
        self.frames_out = Pusher(self.eps["frames"], timeout_ms=30000, hwm=20)
        self._spawn("modem_tx", [self.radio_py, TX_FLOWGRAPH, "--grid", self.grid_file,
                                 "--tx-endpoint", self.eps["frames"], "--iq-endpoint",
                                 self.profile.tx_endpoint, "--gap-min", str(gap),
                                 "--gap-max", str(gap + 448), "--seed", str(self.seed),
                                 "--idle-zeros", str(int(self._streams_continuously())),
                                 "--stats-dir", self.stats_dir])
        if self.profile.kind != "zmq":
            self._device("tx")
        return self.frames_out

    def _streams_continuously(self) -> bool:
        """True for radios that underrun when the modem pauses (USRP without burst tags, Pluto):
        the modem then streams zeros between bursts."""
        if self.profile.kind == "uhd":
            return not self.profile.tx.get("burst_tag")
        return self.profile.kind == "pluto"

    def stop(self, name: str, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (then SIGKILL) the process ``name`` if it runs; its exit code."""
        if name not in self.procs:
            return None
        try:
            return terminate(self.procs[name][0], timeout_s)
        except subprocess.TimeoutExpired:  # SIGKILLed and still not reaped: leave it be
            return None

    def close(self) -> None:
        """Stop every process and the tap; remove the IPC folder."""
        for name in ("modem_tx", "device_tx", "device_rx", "modem_rx", "decoder"):
            self.stop(name, 20.0 if name == "decoder" else 10.0)
        if self.tap is not None:
            self.tap.stop_event.set()
            self.tap.join(10)
        for attr in ("results", "frames_out"):
            sock = getattr(self, attr, None)
            if sock is not None:
                sock.close(linger_ms=0)
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def __enter__(self) -> RadioLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RecordTap(threading.Thread):
    """PULL IQ from the device RX, write it to a SigMF recording, PUSH it on to the modem RX.

    A copy of the modem's receiver (same arguments as ``gsc_rx``) runs on the tapped samples
    and keeps each burst's sample start, so that :meth:`finish` can annotate the frames.
    """

    def __init__(self, src: str, dst: str, base: str, profile: Any, layout: Any,
                 seed: int) -> None:
        super().__init__(daemon=True)
        from flowgraphs.gsc_ofdm.rx import StreamReceiver
        from gsc_stream.emulated_link import RX_ARGS
        from hardware.sigmf_io import RecordingError, SigMFRecorder

        gain = profile.rx.get("gain_db")
        hw = profile.label
        where = profile.device.get("args") or profile.device.get("uri")
        if where:
            hw += f" ({where})"
        if profile.rx.get("antenna"):
            hw += f", {profile.rx['antenna']}"
        try:
            self.recorder = SigMFRecorder(
                base, profile.samp_rate_hz, center_freq_hz=profile.center_freq_hz,
                gain_db=float(gain) if gain is not None else None, hw=hw,
                extra_global={"gsc:profile": profile.name, "gsc:test_seed": int(seed)})
        except RecordingError as e:
            raise ConfigError(str(e)) from None
        self.src, self.dst = src, dst
        self.receiver = StreamReceiver(layout, **RX_ARGS)
        self.scs_hz = float(layout.subcarrier_spacing_hz)
        self.bursts: list[tuple[int, int, float, float]] = []  # start, seq, cfo_hz, snr_db
        self.stop_event = threading.Event()
        self.malformed = 0  # IQ messages that did not parse (counted in rx.json, not stored)
        self.samples = 0

    def _keep(self, bursts: list) -> None:
        for b in bursts:
            self.bursts.append((int(b.start), int(b.seq), float(b.cfo) * self.scs_hz,
                                float(b.snr_db)))

    def run(self) -> None:
        import zmq

        from bridge.pmt import PmtError, parse_tagged

        ctx = zmq.Context.instance()
        pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        try:
            pull.connect(self.src)
            push.bind(self.dst)
            while not self.stop_event.is_set():
                if not pull.poll(100):
                    continue
                msg = pull.recv()
                try:
                    x = parse_tagged(msg).items(np.complex64)
                except (PmtError, ValueError):
                    self.malformed += 1
                    continue
                self.recorder.write(x)
                self.samples += len(x)
                self._keep(self.receiver.process(x))
                while not self.stop_event.is_set():
                    try:
                        push.send(msg, zmq.NOBLOCK)
                        break
                    except zmq.Again:
                        time.sleep(0.01)
        finally:
            pull.close(0)
            push.close(2000)

    def finish(self, results: dict[int, dict]) -> str:
        """Stop, annotate every detected frame with the decoder's verdict, write the meta."""
        from hardware.sigmf_io import FrameAnnotation, RecordingError

        self.stop_event.set()
        self.join(10)
        self._keep(self.receiver.flush())
        length = self.receiver.burst_length
        try:
            for start, seq, cfo_hz, snr_db in self.bursts:
                if start < 0 or start + length > self.recorder.num_samples:
                    continue
                r = results.get(seq, {})
                ok = bool(r.get("ok")) and all(r.get("ok") or [False])
                self.recorder.annotate(FrameAnnotation(
                    start, length, seq=r.get("tx_seq") if ok else None, crc_ok=ok,
                    snr_db=snr_db, cfo_hz=cfo_hz,
                    comment=f"payload_crc32={r['payload_crc32']}" if ok else None))
            return self.recorder.close()
        except RecordingError as e:
            raise ConfigError(str(e)) from None


# ---------------------------------------------------------------------- traffic


def _codec(cfg: LinkConfig):
    import torch

    from .stream_decode import StreamCodec

    torch.set_num_threads(1)
    return StreamCodec(cfg)


def _test_payloads(codec, seqs: list[int], seed: int) -> np.ndarray:
    from .stream_decode import loopback_payload

    f = codec.frame
    return np.stack([loopback_payload(s, seed, f.codewords_per_frame, f.payload_bits_per_block)
                     for s in seqs])


def _file_payloads(codec, data: bytes) -> np.ndarray:
    """File bytes -> payloads: each frame carries its number (32 bits, MSB first) and the
    next chunk of the file, zero-padded."""
    from .stream_decode import SEQ_BITS

    f = codec.frame
    per = f.codewords_per_frame * f.payload_bits_per_block - SEQ_BITS
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="big")
    count = max(1, -(-len(bits) // per))
    out = np.zeros((count, f.codewords_per_frame * f.payload_bits_per_block), np.uint8)
    for i in range(count):
        out[i, :SEQ_BITS] = [(i >> (SEQ_BITS - 1 - j)) & 1 for j in range(SEQ_BITS)]
        chunk = bits[i * per : (i + 1) * per]
        out[i, SEQ_BITS : SEQ_BITS + len(chunk)] = chunk
    return out.reshape(count, f.codewords_per_frame, f.payload_bits_per_block)


def _send(link: RadioLink, codec, payloads: np.ndarray, on_wait=None) -> list[int]:
    """Encode and push every payload; ``on_wait()`` runs between frames (flow control).
    Returns the payload CRC-32 of each frame."""
    from .stream_decode import payload_crc32

    fid = int(link.grid_doc["format_id"])
    crcs = []
    for start in range(0, len(payloads), 32):
        part = payloads[start : start + 32]
        _, x = codec.encode(part)
        for i, xs in enumerate(x):
            if on_wait is not None:
                on_wait()
            frame, t0 = tx_frame(xs, start + i, fid), time.monotonic()
            while not link.frames_out.send(frame, timeout_ms=500):
                link.check_alive(allow_done=("device_rx",))  # a dead flowgraph says why
                if time.monotonic() - t0 > 30:
                    raise ConfigError("the TX flowgraph did not take frames for 30 s")
            crcs.append(payload_crc32(part[i]))
    return crcs


class _Results:
    """Decoder results by RX burst number, gathered from the results socket."""

    def __init__(self, link: RadioLink) -> None:
        self.link = link
        self.by_rx: dict[int, dict] = {}
        self.byes: list[dict] = []
        self.last = time.monotonic()

    def poll(self, timeout_ms: int = 200) -> bool:
        msg = self.link.results.recv(timeout_ms=timeout_ms)
        if msg is None or msg.kind != PayloadKind.CONTROL:
            return False
        obj = msg.json()
        if obj.get("type") == "result":
            self.by_rx[int(obj.get("rx_seq", len(self.by_rx)))] = obj
            self.last = time.monotonic()
            return True
        if obj.get("type") == "bye":
            self.byes.append(obj)
        return False

    def quiet_for(self, seconds: float, target: int | None = None) -> None:
        """Collect until nothing arrived for ``seconds`` or ``target`` results are in."""
        self.last = time.monotonic()
        while time.monotonic() - self.last < seconds:
            if target is not None and len(self.by_rx) >= target:
                return
            self.poll()


def _drain_and_stop(link: RadioLink, res: _Results, target: int | None = None) -> None:
    """End of traffic: stop the sources, let the receiver finish, collect the last results.

    :param target: Results to wait for (frames sent, or frames a recording annotates): then
        the waits end as soon as they are in and allow 15 s of silence (a loaded machine)
        before giving up; without it 3 s of silence ends the traffic."""
    quiet_s = 3.0 if target is None else 15.0
    for name in ("modem_tx", "device_tx"):
        if name in link.procs:
            try:
                link.procs[name][0].wait(30)
            except subprocess.TimeoutExpired:
                link.stop(name)
    res.quiet_for(quiet_s, target)
    link.stop("device_rx")
    if link.tap is not None:
        res.quiet_for(1.0, target)
        link.tap.stop_event.set()
        link.tap.join(10)
    link.stop("modem_rx")  # flushes the receiver: bursts at the very end still go out
    res.quiet_for(2.0 if target is None else 5.0, target)
    link.stop("decoder", 20.0)
    while True:
        msg = link.results.recv(timeout_ms=300)
        if msg is None:
            break
        if msg.kind == PayloadKind.CONTROL and msg.json().get("type") == "bye":
            res.byes.append(msg.json())


def _summary(link: RadioLink, res: _Results, expected: dict[int, int] | None,
             recording: str | None) -> dict[str, Any]:
    """rx.json: detections, decodes, losses by cause, decoded frames."""
    from gsc_phy.provenance import versions

    decoded: dict[int, dict] = {}
    crc_fail = undetected = 0
    frames_out = []
    for rx_seq in sorted(res.by_rx):
        r = res.by_rx[rx_seq]
        ok = r.get("ok") or []
        if not ok or not all(ok):
            crc_fail += 1
            continue
        seq, crc = r.get("tx_seq"), r.get("payload_crc32")
        if expected is not None and (seq not in expected or expected[seq] != crc
                                     or seq in decoded):
            undetected += 1
            continue
        if seq in decoded:
            continue
        decoded[seq] = r
        frames_out.append({"seq": seq, "rx_seq": rx_seq, "payload_crc32": crc,
                           "evm_db": r.get("evm_db"), "snr_db": r.get("snr_db"),
                           "cfo_subcarriers": r.get("cfo")})
    rx_stats = read_json(os.path.join(link.stats_dir, "rx.json"))
    measured = {"crc_failed": crc_fail, "undetected_error": undetected,
                "queue_overflow": int(rx_stats.get("queue_overflow", 0)),
                "decoder_absent": int(rx_stats.get("decoder_absent", 0))}
    if expected is not None:  # every expected frame is decoded or lost with a cause
        lost = attribute_losses(len(expected) - len(decoded), measured)
    else:  # unknown traffic: what was seen to go wrong
        lost = {cause: measured.get(cause, 0) for cause in LOSS_CAUSES[:-2]}
    out: dict[str, Any] = {
        "config": {"radio": link.profile.name, "kind": link.profile.kind,
                   "modulation": link.cfg.modulation, "k": link.cfg.k, "n": link.cfg.n,
                   "profile": link.profile.to_dict()},
        "snr_kind": "esno",
        "seed": link.seed,
        "versions": versions(),
        "frames_detected": len(res.by_rx),
        "frames_decoded": len(decoded),
        "frames_lost": dict(lost),
        "frames": frames_out,
        "radio": {"rx": rx_stats, "tx": read_json(os.path.join(link.stats_dir, "tx.json"))},
    }
    if expected is not None:
        out["frames_expected"] = len(expected)
        out["delivery"] = len(decoded) / max(1, len(expected))
    if recording:
        out["recording"] = recording
        out["record_tap"] = {"samples": link.tap.samples, "bursts": len(link.tap.bursts),
                             "malformed_messages": link.tap.malformed}
    return out


def _write(out_dir: str, name: str, doc: dict) -> str:
    path = os.path.join(out_dir, name)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
    return path


def run_radio_loopback(radio: str, sets: tuple[str, ...] = (), frames: int = 100,
                       workers: int = 1, window: int = 16, record: str | None = None,
                       modulation: str = "qpsk", k: int = 1024, n: int = 2048, seed: int = 0,
                       out_dir: str = "runs/radio-loopback", timeout_s: float = 600.0,
                       echo=None) -> dict[str, Any]:
    """TX, device flowgraph(s), RX and decoder on profile ``radio``; writes loopback.json."""
    say = echo or (lambda msg: None)
    if frames < 1 or workers < 1 or window < 1:
        raise ConfigError("--frames, --workers and --window must be >= 1")
    with RadioLink(radio, sets, out_dir, private_tx=True, modulation=modulation, k=k, n=n,
                   seed=seed) as link:
        if link.profile.kind == "sigmf":
            raise ConfigError("gsc loopback --radio needs a radio that sends and receives (a "
                              "zmq, uhd or pluto profile); replay a recording with gsc rx "
                              "--radio sigmf:PATH, record TX IQ with gsc tx --radio sigmf")
        link.prepare(("tx", "rx"))
        codec = _codec(link.cfg)
        link.start_rx(workers, record)
        link.start_tx()
        say(f"radio {link.profile.name} ({link.profile.label}): {frames} frames")
        res = _Results(link)
        t0 = time.monotonic()
        sent = [0]

        def wait_window() -> None:
            while sent[0] - len(res.by_rx) >= window:
                if time.monotonic() - t0 > timeout_s:
                    raise ConfigError(f"the radio loopback timed out after {timeout_s:.0f} s")
                if not res.poll() and time.monotonic() - res.last > 2.0:
                    sent[0] -= 1  # presume the oldest frame in flight lost
                    res.last = time.monotonic()
                link.check_alive(allow_done=("device_rx",))
            sent[0] += 1

        payloads = _test_payloads(codec, list(range(frames)), seed)
        crcs = _send(link, codec, payloads, wait_window)
        link.frames_out.send(eos_frame(frames))
        _drain_and_stop(link, res, target=frames)
        meta = link.tap.finish(res.by_rx) if link.tap is not None else None
        out = _summary(link, res, dict(enumerate(crcs)), meta)
        out["frames_sent"] = frames
        out["wall_s"] = time.monotonic() - t0
        _write(out_dir, "loopback.json", out)
    return out


def run_rx(radio: str, sets: tuple[str, ...] = (), test_frames: int | None = None,
           duration_s: float | None = None, workers: int = 1, record: str | None = None,
           modulation: str = "qpsk", k: int = 1024, n: int = 2048, seed: int = 0,
           out_dir: str = "runs/rx", echo=None,
           expected_crcs: dict[int, int] | None = None) -> dict[str, Any]:
    """Receive on profile ``radio`` until the source ends, ``duration_s`` passes, all
    ``test_frames`` are decoded, or SIGINT; writes rx.json. ``expected_crcs`` (frame number
    -> payload CRC-32 of what was sent) stands in for ``test_frames`` when the frames carry
    other payloads (a scenario's recorded transmission)."""
    say = echo or (lambda msg: None)
    with RadioLink(radio, sets, out_dir, modulation=modulation, k=k, n=n, seed=seed) as link:
        link.prepare(("rx",))
        expected = None if expected_crcs is None else dict(expected_crcs)
        if test_frames is not None:
            if test_frames < 1:
                raise ConfigError("--test-frames must be >= 1")
            from .stream_decode import payload_crc32

            codec = _codec(link.cfg)
            expected = {s: payload_crc32(p) for s, p in
                        enumerate(_test_payloads(codec, list(range(test_frames)), seed))}
        link.start_rx(workers, record)
        say(f"receiving on {link.profile.name} ({link.profile.label}); Ctrl-C stops")
        res = _Results(link)
        t0 = time.monotonic()
        try:
            while True:
                res.poll()
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                if expected is not None and sum(
                        1 for r in res.by_rx.values() if r.get("tx_seq") in expected
                        and all(r.get("ok") or [False])) >= len(expected):
                    break
                dev = link.procs["device_rx"][0]
                if dev.poll() is not None:
                    if dev.returncode != 0:
                        link.check_alive()
                    break  # a replayed recording has ended
                link.check_alive(allow_done=("device_rx",))
        except KeyboardInterrupt:
            say("stopping")
        _drain_and_stop(link, res, target=link.replay_frames)
        meta = link.tap.finish(res.by_rx) if link.tap is not None else None
        out = _summary(link, res, expected, meta)
        out["wall_s"] = time.monotonic() - t0
        _write(out_dir, "rx.json", out)
    return out


def run_tx(radio: str, sets: tuple[str, ...] = (), test_frames: int | None = None,
           file: str | None = None, modulation: str = "qpsk", k: int = 1024, n: int = 2048,
           seed: int = 0, out_dir: str = "runs/tx", echo=None) -> dict[str, Any]:
    """Send test frames or a file's bytes on profile ``radio``; writes tx.json."""
    say = echo or (lambda msg: None)
    if (test_frames is None) == (file is None):
        raise ConfigError("give either --test-frames N or --file PATH")
    if test_frames is not None and test_frames < 1:
        raise ConfigError("--test-frames must be >= 1")
    data = None
    if file is not None:
        try:
            with open(file, "rb") as fh:
                data = fh.read()
        except OSError as e:
            raise ConfigError(f"cannot read {file}: {e.strerror}") from None
    with RadioLink(radio, sets, out_dir, modulation=modulation, k=k, n=n, seed=seed) as link:
        link.prepare(("tx",))
        codec = _codec(link.cfg)
        payloads = (_file_payloads(codec, data) if data is not None
                    else _test_payloads(codec, list(range(test_frames)), seed))
        link.start_tx()
        say(f"sending {len(payloads)} frames on {link.profile.name} ({link.profile.label})")
        t0 = time.monotonic()
        crcs = _send(link, codec, payloads)
        link.frames_out.send(eos_frame(len(payloads)))
        for name in ("modem_tx", "device_tx"):
            if name in link.procs:
                try:
                    link.procs[name][0].wait(120)
                except subprocess.TimeoutExpired:
                    link.stop(name)
        out = {"config": {"radio": link.profile.name, "kind": link.profile.kind,
                          "modulation": modulation, "k": k, "n": n,
                          "source": file or f"test frames (seed {seed})"},
               "seed": seed, "frames_sent": len(payloads),
               "frames": [{"seq": i, "payload_crc32": c} for i, c in enumerate(crcs)],
               "radio": {"tx": read_json(os.path.join(link.stats_dir, "tx.json"))},
               "wall_s": time.monotonic() - t0}
        _write(out_dir, "tx.json", out)
    return out


# ---------------------------------------------------------------------- command line

_radio_opt = click.option("--radio", "radio", required=True,
                          help="Profile: shipped name, YAML path, or sigmf:DIR/NAME")
_set_opt = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                        help="Override a profile value (dotted key), repeatable")


def _format_opts(f):
    for opt in reversed([
        click.option("--mod", "modulation", default="qpsk", show_default=True),
        click.option("--k", type=int, default=1024, show_default=True),
        click.option("--n", type=int, default=2048, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the test payloads"),
    ]):
        f = opt(f)
    return f


@click.command("tx")
@_radio_opt
@_set_opt
@click.option("--test-frames", type=int, default=None, help="Send N numbered test frames")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Send this file's bytes")
@_format_opts
@click.option("--out", "out_dir", default="runs/tx", show_default=True,
              type=click.Path(file_okay=False))
def tx(**o) -> None:
    """Send frames through a radio profile (modem TX + device flowgraph); writes OUT/tx.json."""
    r = run_tx(echo=click.echo, **o)
    click.echo(f"sent {r['frames_sent']} frames; wrote {os.path.join(o['out_dir'], 'tx.json')}")


@click.command("rx")
@_radio_opt
@_set_opt
@click.option("--record", default=None, metavar="DIR/NAME",
              help="Also store the raw IQ as a SigMF recording with frame annotations")
@click.option("--test-frames", type=int, default=None,
              help="Expect N numbered test frames (stop when all arrived; count losses)")
@click.option("--duration", "duration_s", type=float, default=None,
              help="Stop after this many seconds")
@click.option("--workers", type=int, default=1, show_default=True)
@_format_opts
@click.option("--out", "out_dir", default="runs/rx", show_default=True,
              type=click.Path(file_okay=False))
def rx(**o) -> None:
    """Receive and decode through a radio profile (device flowgraph + modem RX + decoder)."""
    if o["workers"] < 1:
        raise ConfigError("--workers must be >= 1")
    r = run_rx(echo=click.echo, **o)
    lost = ", ".join(f"{k} {v}" for k, v in r["frames_lost"].items() if v) or "none"
    click.echo(f"detected {r['frames_detected']} frames, decoded {r['frames_decoded']}, "
               f"lost: {lost}; wrote {os.path.join(o['out_dir'], 'rx.json')}")
    if r.get("recording"):
        click.echo(f"recording: {r['recording']}")


def loopback_radio_command(o: dict, radio: str, sets: tuple[str, ...],
                           record: str | None) -> None:
    """``gsc loopback --radio PROFILE``: the click options of ``gsc loopback`` -> a radio run
    (the channel-emulator options do not apply; the profile's impairments do)."""
    r = run_radio_loopback(radio, sets, frames=o["frames"], workers=o["workers"],
                           window=o["window"], record=record, modulation=o["modulation"],
                           k=o["k"], n=o["n"], seed=o["seed"], out_dir=o["out_dir"],
                           timeout_s=o["timeout_s"], echo=click.echo)
    lost = ", ".join(f"{k} {v}" for k, v in r["frames_lost"].items() if v) or "none"
    click.echo(f"radio {radio}: decoded {r['frames_decoded']}/{r['frames_sent']} frames "
               f"({100 * r['delivery']:.2f} %), lost: {lost}")
    if r.get("recording"):
        click.echo(f"recording: {r['recording']}")
    click.echo(f"wrote {os.path.join(o['out_dir'], 'loopback.json')}")
