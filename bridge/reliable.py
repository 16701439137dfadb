"""A reliable work queue over ZeroMQ: one producer, N consumers, nothing lost silently.

The producer (:class:`ReliableQueue`, a ROUTER socket it binds) hands bridge frames to
consumers (:class:`ReliableConsumer`, DEALER sockets that connect) that ask for work:

* **credit**: a consumer announces how many frames it may hold (``hello``); the producer
  never sends it more than that many unacknowledged frames;
* **acknowledgements**: a consumer acks a frame once it has finished with it (result sent);
  only then does the producer forget the frame;
* **resend window**: frames in flight at a consumer that is declared dead (no heartbeat for
  ``heartbeat_timeout_s``, a send that finds it gone, or a new ``hello`` under the same
  name from a restarted process) go back to the head of the queue for another consumer;
* **bounded queue and spool**: at most ``queue_max`` frames wait in memory, then up to
  ``spool_max`` on disk (``spool_dir``, one wire-format file per frame, picked up again by
  the next producer on the same folder); beyond that a frame is dropped and counted as
  ``queue_overflow``; frames still waiting when the producer stops with no consumer left
  are counted as ``decoder_absent``;
* **duplicates**: a frame resent after its consumer died may have been finished already,
  so the result side filters by ``(stream_id, seq)`` with :class:`SeenFilter`.

Every message is one bridge wire frame (:mod:`bridge.wire`): work items travel as they were
put (their ``stream_id`` and ``seq`` identify them), protocol messages are ``CONTROL`` JSON
(``{"t": "hello", "name", "credit"}``, ``{"t": "ack", "keys": [[stream, seq], ...]}``,
``{"t": "hb"}`` from consumers), except the producer's ``ACK`` JSON ``{"t": "reset"}`` to a
sender it does not know, which then says ``hello`` again. Never pickle.

>>> from bridge.wire import Frame, PayloadKind
>>> q = ReliableQueue("inproc://doc-q").start()
>>> c = ReliableConsumer("inproc://doc-q", name="w0", credit=4)
>>> q.put(Frame(PayloadKind.ACK, b"job", stream_id=1, seq=5))
True
>>> f = c.get(timeout_s=5); (f.stream_id, f.seq, f.payload)
(1, 5, b'job')
>>> c.ack(f); q.drain(timeout_s=5)["acked"]
1
>>> c.close()
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field

import zmq

from . import wire
from .security import (
    CurveConfig,
    release_server_socket,
    secure_client,
    secure_server_socket,
    server_curve,
)
from .transport import check_bind_endpoint

__all__ = ["ReliableQueue", "ReliableConsumer", "SeenFilter", "Key", "queue_server_curve"]

logger = logging.getLogger("bridge.reliable")

#: A work item's identity: ``(stream_id, seq)`` of its wire frame.
Key = tuple[int, int]
_SPOOL_EXT = ".gscw"


def _control(obj: dict, kind: wire.PayloadKind = wire.PayloadKind.CONTROL) -> bytes:
    return wire.encode(wire.Frame.from_json(obj, kind=kind, timestamp_ns=0))


_RESET = _control({"t": "reset"}, wire.PayloadKind.ACK)


@dataclass
class _Consumer:
    """What the producer knows about one consumer connection."""

    name: str
    credit: int
    last_seen: float
    inflight: dict = field(default_factory=dict)  # Key -> encoded frame


class SeenFilter:
    """Duplicate suppression by ``(stream_id, seq)`` with bounded memory.

    Per stream it keeps a floor below which every sequence number counts as seen, plus the
    numbers seen above it (at most ``max_tracked``; beyond that the floor moves up and the
    oldest are forgotten, so very late first copies would count as duplicates).

    :param max_tracked: Most sequence numbers kept above the floor, per stream.

    >>> s = SeenFilter()
    >>> [s.check(1, q) for q in (0, 1, 1, 0, 2)]
    [False, False, True, True, False]
    >>> s.duplicates
    2
    """

    def __init__(self, max_tracked: int = 1 << 16) -> None:
        self.max_tracked = int(max_tracked)
        self.duplicates = 0
        self._floor: dict[int, int] = {}
        self._above: dict[int, set[int]] = {}

    def check(self, stream_id: int, seq: int) -> bool:
        """Record ``(stream_id, seq)``; True when it was seen before (a duplicate)."""
        floor = self._floor.get(stream_id, 0)
        above = self._above.setdefault(stream_id, set())
        if seq < floor or seq in above:
            self.duplicates += 1
            return True
        above.add(seq)
        while floor in above:
            above.discard(floor)
            floor += 1
        if len(above) > self.max_tracked:
            floor = min(above) + 1
            above.difference_update([q for q in above if q < floor])
            while floor in above:
                above.discard(floor)
                floor += 1
        self._floor[stream_id] = floor
        return False


def queue_server_curve(endpoint: str, curve_secret: str = "",
                       curve_authorized_dir: str = "") -> CurveConfig | None:
    """CURVE server keys for a :class:`ReliableQueue` to bind on ``endpoint``, from the RX
    blocks' ``curve_secret``/``curve_authorized_dir`` parameters ('' = off), checked now.

    Loopback TCP, ``ipc://`` and ``inproc://`` endpoints may go without keys; any other
    endpoint needs both (then the queue is bound with ``allow_remote=True``).

    :output: Server :class:`~bridge.security.CurveConfig`, or ``None`` (no CURVE).
    :raises ValueError: one line: a remote endpoint without keys, half a key pair, bad files.

    >>> queue_server_curve("tcp://127.0.0.1:5601") is None
    True
    >>> queue_server_curve("tcp://0.0.0.0:5601")
    Traceback (most recent call last):
    ...
    ValueError: decoder endpoint 'tcp://0.0.0.0:5601' is not loopback: set curve_secret and \
curve_authorized_dir (CurveZMQ keys from 'gsc keys generate')
    """
    curve = server_curve(curve_secret, curve_authorized_dir)
    if curve is None and endpoint:
        try:
            check_bind_endpoint(endpoint)
        except ValueError:
            raise ValueError(
                f"decoder endpoint {endpoint!r} is not loopback: set curve_secret and "
                "curve_authorized_dir (CurveZMQ keys from 'gsc keys generate')"
            ) from None
    return curve


class _Spool:
    """Bounded FIFO of encoded frames on disk, one file per frame (wire format)."""

    def __init__(self, folder: str, max_items: int) -> None:
        self.folder = folder
        self.max_items = int(max_items)
        os.makedirs(folder, exist_ok=True)
        names = sorted(n for n in os.listdir(folder) if n.endswith(_SPOOL_EXT))
        self._files = deque(os.path.join(folder, n) for n in names)
        self._next = int(names[-1][: -len(_SPOOL_EXT)]) + 1 if names else 0

    def __len__(self) -> int:
        return len(self._files)

    def push(self, data: bytes) -> bool:
        if len(self._files) >= self.max_items:
            return False
        path = os.path.join(self.folder, f"{self._next:016d}{_SPOOL_EXT}")
        self._next += 1
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        self._files.append(path)
        return True

    def pop(self) -> bytes:
        path = self._files.popleft()
        with open(path, "rb") as fh:
            data = fh.read()
        os.remove(path)
        return data


class ReliableQueue:
    """Producer end (see the module docstring). Thread-safe :meth:`put`; a background
    thread owns the socket once :meth:`start` has run.

    :param endpoint: Endpoint to bind (loopback/ipc/inproc unless ``allow_remote``).
    :param queue_max: Frames waiting in memory before the spool (or overflow) is used.
    :param spool_dir: Folder of the on-disk spool (``None``: no spool).
    :param spool_max: Most frames in the spool.
    :param heartbeat_timeout_s: A consumer silent this long is declared dead.
    :param allow_remote: Allow binding a non-loopback endpoint (needs ``curve`` server keys).
    :param curve: CurveZMQ server keys (:class:`~bridge.security.CurveConfig` with
        ``authorized_dir``): traffic is encrypted and only consumers whose public key is in
        that directory are admitted; others never get a frame nor count as consumers.
    :param context: ZeroMQ context (``inproc://`` peers must share one).

    :meth:`stats` counts ``put``, ``sent`` (deliveries, resends included), ``acked``,
    ``requeued``, ``spooled``, ``queue_overflow``, ``decoder_absent`` (after :meth:`drain`),
    ``consumers_dead``, ``unknown_acks`` and the current ``waiting``/``in_flight``.
    """

    def __init__(
        self,
        endpoint: str,
        queue_max: int = 256,
        spool_dir: str | None = None,
        spool_max: int = 0,
        heartbeat_timeout_s: float = 3.0,
        allow_remote: bool = False,
        curve: CurveConfig | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        if curve is not None and not curve.is_server:
            raise ValueError("ReliableQueue binds: pass server keys, "
                             "CurveConfig(secret_path, authorized_dir=DIR)")
        check_bind_endpoint(endpoint, allow_remote, curve is not None)
        if queue_max < 1:
            raise ValueError("queue_max must be >= 1")
        self.endpoint = endpoint
        self.queue_max = int(queue_max)
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.counters: Counter = Counter()
        self._spool = _Spool(spool_dir, spool_max) if spool_dir and spool_max > 0 else None
        self._waiting: deque = deque()  # (Key, bytes)
        self._consumers: dict[bytes, _Consumer] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ctx = context if context is not None else zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._zap_domain: str | None = None
        try:
            if curve is not None:
                self._zap_domain = secure_server_socket(self._sock, self._ctx, curve)
            self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.SNDTIMEO, 0)
            if "://[" in endpoint:  # IPv6 literal such as tcp://[::1]:5601
                self._sock.setsockopt(zmq.IPV6, 1)
            self._sock.bind(endpoint)
        except BaseException:
            self._close_socket()
            raise
        last = self._sock.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint = last.decode() if last else endpoint
        self._thread: threading.Thread | None = None
        self._ever_connected = False

    # ------------------------------------------------------------------ public
    def start(self) -> ReliableQueue:
        """Start the socket thread; returns ``self``."""
        self._thread = threading.Thread(target=self._loop, name="reliable-queue", daemon=True)
        self._thread.start()
        return self

    def put(self, frame: wire.Frame | bytes) -> bool:
        """Queue one frame (a :class:`~bridge.wire.Frame` or its encoded bytes).

        :output: ``True`` when it is queued (memory or spool); ``False`` when both are full
            and it was dropped (counted as ``queue_overflow``).
        """
        if isinstance(frame, wire.Frame):
            data, key = wire.encode(frame), (frame.stream_id, frame.seq)
        else:
            data = bytes(frame)
            f = wire.decode(data)
            key = (f.stream_id, f.seq)
        with self._lock:
            self.counters["put"] += 1
            spool = self._spool
            if len(self._waiting) < self.queue_max and not (spool and len(spool)):
                self._waiting.append((key, data))
                return True
            if spool is not None and spool.push(data):
                self.counters["spooled"] += 1
                return True
            self.counters["queue_overflow"] += 1
            return False

    def live_consumers(self) -> int:
        """Consumers currently connected and not declared dead."""
        with self._lock:
            return len(self._consumers)

    def pending(self) -> int:
        """Frames waiting (memory and spool) or in flight."""
        with self._lock:
            return self._pending_locked()

    def stats(self) -> dict:
        """Counters (see the class docstring) as a JSON-ready dict."""
        with self._lock:
            out = {k: int(v) for k, v in self.counters.items()}
            out["waiting"] = len(self._waiting) + (len(self._spool) if self._spool else 0)
            out["in_flight"] = sum(len(c.inflight) for c in self._consumers.values())
            out["consumers"] = len(self._consumers)
        return out

    def drain(self, timeout_s: float = 30.0, absent_s: float = 2.0) -> dict:
        """Wait until every frame is acknowledged, then stop; returns :meth:`stats`.

        Gives up after ``timeout_s``, or after ``absent_s`` when no consumer has connected at
        all (one that went away may be restarting: then only ``timeout_s`` applies); frames
        still unacknowledged then are counted as ``decoder_absent`` (the spool's files are
        removed with them).
        """
        t0 = time.monotonic()
        while self.pending():
            now = time.monotonic()
            if now - t0 > timeout_s or (not self._ever_connected and now - t0 > absent_s):
                break
            time.sleep(0.02)
        self._stop_thread()
        with self._lock:
            left = self._pending_locked()
            self.counters["decoder_absent"] += left
            self._waiting.clear()
            while self._spool and len(self._spool):
                self._spool.pop()
            for c in self._consumers.values():
                c.inflight.clear()
        if left:
            logger.warning("reliable queue %s: %d frame(s) never acknowledged (decoder_absent)",
                           self.endpoint, left)
        self.close()
        return self.stats()

    def close(self) -> None:
        """Stop the thread and close the socket (waiting frames stay in memory/spool)."""
        self._stop_thread()
        self._close_socket()

    def _close_socket(self) -> None:
        if not self._sock.closed:
            self._sock.close(linger=0)
        if self._zap_domain is not None:
            release_server_socket(self._ctx, self._zap_domain)
            self._zap_domain = None

    # ------------------------------------------------------------------ internals
    def _pending_locked(self) -> int:
        spooled = len(self._spool) if self._spool else 0
        return len(self._waiting) + spooled + sum(len(c.inflight)
                                                  for c in self._consumers.values())

    def _stop_thread(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if poller.poll(10):
                for _ in range(1000):
                    try:
                        ident, data = self._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    except ValueError:  # not [identity, message]
                        self.counters["malformed"] += 1
                        continue
                    self._on_message(ident, data)
            with self._lock:
                self._refill()
                self._expire()
                self._dispatch()

    def _on_message(self, ident: bytes, data: bytes) -> None:
        try:
            msg = wire.decode(data).json()
            kind = msg["t"]
        except (wire.WireError, KeyError, TypeError) as e:
            self.counters["malformed"] += 1
            logger.warning("reliable queue: malformed message from a consumer: %s", e)
            return
        now = time.monotonic()
        with self._lock:
            c = self._consumers.get(ident)
            if kind == "hello":
                name = str(msg.get("name", ""))
                for other_id, other in list(self._consumers.items()):
                    if other_id != ident and name and other.name == name:
                        self._declare_dead(other_id, "restarted under a new identity")
                if c is not None:  # a second hello: its old frames are gone
                    self._declare_dead(ident, "said hello again")
                credit = max(1, int(msg.get("credit", 1)))
                self._consumers[ident] = _Consumer(name, credit, now)
                self._ever_connected = True
                return
            if c is None:  # we restarted, or it was declared dead: it must say hello again
                self._send(ident, _RESET)
                if kind == "ack":
                    self.counters["unknown_acks"] += len(msg.get("keys", []))
                return
            c.last_seen = now
            if kind == "ack":
                for k in msg.get("keys", []):
                    if c.inflight.pop((int(k[0]), int(k[1])), None) is None:
                        self.counters["unknown_acks"] += 1
                    else:
                        self.counters["acked"] += 1

    def _send(self, ident: bytes, data: bytes) -> bool:
        try:
            self._sock.send_multipart((ident, data), zmq.NOBLOCK)
            return True
        except zmq.ZMQError:  # EHOSTUNREACH (gone) or EAGAIN (its pipe is full)
            return False

    def _declare_dead(self, ident: bytes, why: str) -> None:
        c = self._consumers.pop(ident)
        self.counters["consumers_dead"] += 1
        if c.inflight:
            self.counters["requeued"] += len(c.inflight)
            self._waiting.extendleft(reversed(list(c.inflight.items())))
        logger.warning("reliable queue: consumer %r %s; %d frame(s) requeued",
                       c.name, why, len(c.inflight))

    def _refill(self) -> None:
        spool = self._spool
        while spool and len(spool) and len(self._waiting) < self.queue_max:
            data = spool.pop()
            try:
                f = wire.decode(data)
            except wire.WireError:
                self.counters["spool_corrupt"] += 1
                continue
            self._waiting.append(((f.stream_id, f.seq), data))

    def _expire(self) -> None:
        limit = time.monotonic() - self.heartbeat_timeout_s
        for ident, c in list(self._consumers.items()):
            if c.last_seen < limit:
                self._declare_dead(ident, f"silent for {self.heartbeat_timeout_s:g} s")

    def _dispatch(self) -> None:
        while self._waiting:
            free = [(c.credit - len(c.inflight), i) for i, c in self._consumers.items()
                    if len(c.inflight) < c.credit]
            if not free:
                return
            ident = max(free)[1]
            key, data = self._waiting.popleft()
            if self._send(ident, data):
                self._consumers[ident].inflight[key] = data
                self.counters["sent"] += 1
            else:
                self._waiting.appendleft((key, data))
                self._declare_dead(ident, "cannot be reached")


class ReliableConsumer:
    """Consumer end (see the module docstring). A background thread owns the DEALER socket
    and sends heartbeats, so a long computation does not make the consumer look dead.

    :param endpoint: The producer's endpoint (connects).
    :param name: Stable name of this consumer (a restarted process with the same name gets
        its predecessor's unacknowledged frames resent at once).
    :param credit: Most frames held unacknowledged.
    :param heartbeat_s: Heartbeat period (keep it well below the producer's timeout).
    :param curve: CurveZMQ client keys (:class:`~bridge.security.CurveConfig` with
        ``server_public_path``) for a producer that requires them; checked here, so missing
        or unreadable key files raise ``ValueError`` at construction.
    :param context: ZeroMQ context.

    Use :meth:`get` for the next frame and :meth:`ack` once it is finished with (after its
    result has been sent).
    """

    def __init__(
        self,
        endpoint: str,
        name: str = "",
        credit: int = 16,
        heartbeat_s: float = 0.5,
        curve: CurveConfig | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        if curve is not None and curve.is_server:
            raise ValueError("ReliableConsumer connects: pass client keys, "
                             "CurveConfig(secret_path, server_public_path=SERVER.key)")
        self.endpoint = endpoint
        self.name = name or uuid.uuid4().hex
        self.credit = max(1, int(credit))
        self.heartbeat_s = float(heartbeat_s)
        self.counters: Counter = Counter()
        self._ctx = context if context is not None else zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        try:
            if curve is not None:
                secure_client(self._sock, curve.secret_path, curve.server_public_path)
            self._sock.setsockopt(zmq.LINGER, 1000)
            if "://[" in endpoint:
                self._sock.setsockopt(zmq.IPV6, 1)
        except BaseException:
            self._sock.close(linger=0)
            raise
        self._inbox: queue.Queue = queue.Queue()
        self._pipe_name = f"inproc://reliable-consumer-{uuid.uuid4().hex}"
        self._pipe_io = self._ctx.socket(zmq.PAIR)
        self._pipe_io.bind(self._pipe_name)
        self._pipe = self._ctx.socket(zmq.PAIR)
        self._pipe.connect(self._pipe_name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reliable-consumer", daemon=True)
        self._thread.start()

    def get(self, timeout_s: float = 1.0) -> wire.Frame | None:
        """The next work frame, or ``None`` after ``timeout_s`` (0: do not wait)."""
        try:
            if timeout_s <= 0:
                return self._inbox.get_nowait()
            return self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def ack(self, *frames: wire.Frame) -> None:
        """Acknowledge finished frames (the producer forgets them; credit returns)."""
        keys = [[int(f.stream_id), int(f.seq)] for f in frames]
        if keys:
            self._pipe.send(json.dumps(keys).encode())
            self.counters["acked"] += len(keys)

    def close(self) -> None:
        """Stop the socket thread; unacknowledged frames will be resent to others."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._pipe.close(linger=0)

    def __enter__(self) -> ReliableConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        sock = self._sock  # created in __init__, used only by this thread from here on
        sock.connect(self.endpoint)
        hello = _control({"t": "hello", "name": self.name, "credit": self.credit})
        self._send(sock, hello)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._pipe_io, zmq.POLLIN)
        next_hb = time.monotonic() + self.heartbeat_s
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(50))
                if self._pipe_io in events:
                    while True:
                        try:
                            keys = json.loads(self._pipe_io.recv(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                        self._send(sock, _control({"t": "ack", "keys": keys}))
                if sock in events:
                    while True:
                        try:
                            data = sock.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._on_message(sock, data, hello)
                if time.monotonic() >= next_hb:
                    self._send(sock, _control({"t": "hb"}))
                    next_hb = time.monotonic() + self.heartbeat_s
        finally:
            sock.close()
            self._pipe_io.close(linger=0)

    def _send(self, sock: zmq.Socket, data: bytes) -> None:
        """Send without blocking: with no producer for a long time the socket's queue fills
        up, and a lost heartbeat or ack only means a resend (the result side drops it)."""
        try:
            sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            self.counters["send_dropped"] += 1

    def _on_message(self, sock: zmq.Socket, data: bytes, hello: bytes) -> None:
        try:
            f = wire.decode(data)
        except wire.WireError as e:
            self.counters[f"dropped_{e.cause}"] += 1
            return
        if data == _RESET:
            self.counters["resets"] += 1
            self._send(sock, hello)
            return
        self.counters["received"] += 1
        self._inbox.put(f)
