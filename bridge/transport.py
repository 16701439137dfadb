"""ZeroMQ transports for bridge frames: PUB/SUB and PUSH/PULL on pyzmq.

Senders encode :class:`~bridge.wire.Frame` objects with :func:`bridge.wire.encode` (bytes go
out as they are); on loopback TCP, IPC, in-process and CurveZMQ sockets, where ZeroMQ keeps
bytes intact (CURVE adds a MAC), the frame CRC covers the header only (``HEADER_CRC``: one
CRC pass over the payload less at each end); plain TCP to another host covers the payload;
receivers decode with :func:`bridge.wire.decode` by default, or with any
``decoder`` such as :func:`bridge.pmt.deserialize` (gr-zeromq message blocks),
:func:`bridge.pmt.parse_tagged` (gr-zeromq stream blocks with ``pass_tags``) or ``None``
(raw bytes as they arrived). A message the decoder rejects is counted in
:attr:`TransportStats.dropped` under its cause, logged, and skipped: a receiver never raises
because of what arrived.

Safety: binding refuses anything but loopback (``127.0.0.0/8``, ``::1``, ``localhost``),
``ipc://`` and ``inproc://``. Binding another address needs ``allow_remote=True`` *and*
CurveZMQ server keys, ``curve=CurveConfig(secret_path, authorized_dir=DIR)`` (keys from
``gsc keys generate``): only clients whose public key is in ``DIR`` get through. Clients of
such a server pass ``curve=CurveConfig(own_secret, server_public_path=SERVER_KEY)``.
Defaults bind ``tcp://127.0.0.1`` on a free port (see :attr:`Transport.endpoint`).

Each transport wraps one socket and, like a ZeroMQ socket, belongs to one thread. Close it
(or use ``with``) for a clean shutdown: senders linger up to ``linger_ms`` to flush.

>>> from bridge.wire import Frame, PayloadKind
>>> with Puller() as rx, Pusher(rx.endpoint, bind=False) as tx:
...     tx.send(Frame(PayloadKind.ACK, b"ok", seq=1))
...     rx.recv(timeout_ms=2000).payload
True
b'ok'
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import zmq

from . import wire
from .security import CurveConfig, release_server_socket, secure_client, secure_server_socket

__all__ = [
    "DEFAULT_ENDPOINT",
    "CurveConfig",
    "TransportStats",
    "Transport",
    "Publisher",
    "Subscriber",
    "Pusher",
    "Puller",
    "check_bind_endpoint",
]

DEFAULT_ENDPOINT = "tcp://127.0.0.1:*"
logger = logging.getLogger("bridge.transport")

#: Log the first this-many drops of each cause, then every ``_LOG_EVERY``-th.
_LOG_FIRST = 10
_LOG_EVERY = 1000


def check_bind_endpoint(endpoint: str, allow_remote: bool = False, secured: bool = False) -> None:
    """Raise ``ValueError`` unless ``endpoint`` may be bound.

    Loopback TCP (``127.0.0.0/8``, ``::1``, ``localhost``), ``ipc://`` and ``inproc://``
    are always allowed; wildcards (``*``, ``0.0.0.0``), other addresses, interface names and
    other transports need ``allow_remote=True`` and a CurveZMQ server (``secured=True``).

    >>> check_bind_endpoint("tcp://127.0.0.1:5555")
    >>> check_bind_endpoint("tcp://*:5555", allow_remote=True, secured=True)
    >>> check_bind_endpoint("tcp://*:5555")
    Traceback (most recent call last):
    ...
    ValueError: refusing to bind non-loopback endpoint 'tcp://*:5555' (pass allow_remote=True)
    """
    if _is_local(endpoint):
        return
    if not allow_remote:
        raise ValueError(
            f"refusing to bind non-loopback endpoint {endpoint!r} (pass allow_remote=True)"
        )
    if not secured:
        raise ValueError(
            f"binding non-loopback endpoint {endpoint!r} needs CurveZMQ: pass "
            "curve=CurveConfig(SERVER.key_secret, authorized_dir=DIR) with keys from "
            "'gsc keys generate'"
        )


def _is_local(endpoint: str) -> bool:
    """Whether ``endpoint`` is loopback TCP, ``ipc://`` or ``inproc://``."""
    scheme, sep, rest = endpoint.partition("://")
    scheme = scheme.lower()
    if not sep:
        return False
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class TransportStats:
    """Counters of one transport.

    :param sent: Messages handed to ZeroMQ.
    :param received: Messages received and decoded.
    :param bytes_received: Bytes of all messages received (decoded or dropped).
    :param dropped: Messages dropped, by cause (``crc``, ``truncated``, ``version`` ...).
    :param send_timeouts: Sends that gave up after their timeout (peer absent or HWM).
    :param recv_timeouts: Receives that returned ``None`` after their timeout.

    >>> s = TransportStats(); s.dropped["crc"] += 1; s.dropped_total
    1
    """

    sent: int = 0
    received: int = 0
    bytes_received: int = 0
    dropped: Counter = field(default_factory=Counter)
    send_timeouts: int = 0
    recv_timeouts: int = 0

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the cause."""
        return sum(self.dropped.values())

    def as_dict(self) -> dict:
        """Plain-dict snapshot (JSON-ready)."""
        return {
            "sent": self.sent,
            "received": self.received,
            "bytes_received": self.bytes_received,
            "dropped": dict(self.dropped),
            "dropped_total": self.dropped_total,
            "send_timeouts": self.send_timeouts,
            "recv_timeouts": self.recv_timeouts,
        }


class Transport:
    """Common base: one ZeroMQ socket with HWM, timeouts, linger and counters.

    :param socket_type: ``zmq.PUB``, ``zmq.SUB``, ``zmq.PUSH`` or ``zmq.PULL``.
    :param endpoint: ZeroMQ endpoint, e.g. ``tcp://127.0.0.1:5555`` (``:*`` = free port).
    :param bind: Bind (``True``) or connect (``False``) to ``endpoint``.
    :param hwm: Send and receive high-water marks (messages queued before PUB drops or
        PUSH blocks).
    :param timeout_ms: Default send/receive timeout; ``-1`` waits forever.
    :param linger_ms: How long :meth:`close` waits to flush queued messages.
    :param allow_remote: Allow binding a non-loopback endpoint (needs ``curve`` server keys).
    :param curve: CurveZMQ keys (:class:`~bridge.security.CurveConfig`): server keys make the
        socket admit only authorised clients' keys, client keys authenticate to such a server.
    :param context: ZeroMQ context (default: the process-wide ``zmq.Context.instance()``;
        ``inproc://`` peers must share one).

    >>> with Pusher() as tx:
    ...     tx.endpoint.startswith("tcp://127.0.0.1:")
    True
    """

    def __init__(
        self,
        socket_type: int,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        bind: bool = True,
        hwm: int = 1000,
        timeout_ms: int = 1000,
        linger_ms: int = 1000,
        allow_remote: bool = False,
        curve: CurveConfig | None = None,
        context: zmq.Context | None = None,
    ):
        if bind:
            check_bind_endpoint(endpoint, allow_remote, curve is not None and curve.is_server)
        #: Whether ZeroMQ alone guarantees intact bytes here (local carrier or CURVE's MAC).
        self.carrier_intact = curve is not None or _is_local(endpoint)
        self.timeout_ms = int(timeout_ms)
        self.linger_ms = int(linger_ms)
        self.stats = TransportStats()
        self._ctx = context if context is not None else zmq.Context.instance()
        self._sock = self._ctx.socket(socket_type)
        self._zap_domain: str | None = None
        try:
            if curve is not None and curve.is_server:
                self._zap_domain = secure_server_socket(self._sock, self._ctx, curve)
            elif curve is not None:
                secure_client(self._sock, curve.secret_path, curve.server_public_path)
            self._sock.setsockopt(zmq.SNDHWM, int(hwm))
            self._sock.setsockopt(zmq.RCVHWM, int(hwm))
            self._sock.setsockopt(zmq.LINGER, self.linger_ms)
            self._sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
            self._sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
            self._sndtimeo = self._rcvtimeo = self.timeout_ms
            if "://[" in endpoint:  # IPv6 literal such as tcp://[::1]:5555
                self._sock.setsockopt(zmq.IPV6, 1)
            self._setup(self._sock)
            if bind:
                self._sock.bind(endpoint)
            else:
                self._sock.connect(endpoint)
            last = self._sock.getsockopt(zmq.LAST_ENDPOINT)
            self._endpoint = last.decode() if last else endpoint
        except BaseException:
            self._sock.close(linger=0)
            self._release_zap()
            raise

    def _release_zap(self) -> None:
        if self._zap_domain is not None:
            release_server_socket(self._ctx, self._zap_domain)
            self._zap_domain = None

    def _setup(self, sock: zmq.Socket) -> None:
        """Hook for subclasses: socket options set before bind/connect."""

    @property
    def endpoint(self) -> str:
        """The endpoint actually bound or connected (with the real port for ``:*``)."""
        return self._endpoint

    @property
    def socket(self) -> zmq.Socket:
        """The underlying pyzmq socket (for pollers; do not close it directly)."""
        return self._sock

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (or the context was terminated)."""
        return self._sock.closed

    def close(self, linger_ms: int | None = None) -> None:
        """Close the socket, waiting up to ``linger_ms`` (default ``self.linger_ms``) to flush.

        Idempotent.
        """
        if not self._sock.closed:
            self._sock.close(linger=self.linger_ms if linger_ms is None else int(linger_ms))
        self._release_zap()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"{type(self).__name__}({self._endpoint!r}, {state})"


class _Sender(Transport):
    def __init__(
        self,
        socket_type: int,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        encoder: Callable[[Any], Any] | None = None,
        **kw: Any,
    ):
        super().__init__(socket_type, endpoint, **kw)
        self._encoder = encoder
        self._payload_crc = not self.carrier_intact

    def send(self, obj: Any, *, topic: bytes | None = None, timeout_ms: int | None = None) -> bool:
        """Encode and send one message; ``False`` if it could not be queued in time.

        :param obj: A :class:`~bridge.wire.Frame`, bytes, or what ``encoder`` accepts.
        :param topic: Send ``[topic, message]`` as two parts (gr-zeromq's ``key``).
        :param timeout_ms: Override the default timeout (``-1``: wait forever, ``0``: never).
        """
        if self._encoder is not None:
            data = self._encoder(obj)
        elif isinstance(obj, wire.Frame):
            data = wire.encode(obj, payload_crc=self._payload_crc)
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            data = obj
        else:
            raise TypeError(f"cannot send {type(obj).__name__}: pass a Frame, bytes or an encoder")
        sock = self._sock
        timeout = self.timeout_ms if timeout_ms is None else int(timeout_ms)
        if timeout != self._sndtimeo:
            sock.setsockopt(zmq.SNDTIMEO, timeout)
            self._sndtimeo = timeout
        try:
            if topic is None:
                sock.send(data)
            else:
                sock.send_multipart((topic, data))
        except zmq.Again:
            self.stats.send_timeouts += 1
            return False
        self.stats.sent += 1
        return True


class _Receiver(Transport):
    def __init__(
        self,
        socket_type: int,
        endpoint: str,
        *,
        decoder: Callable[[Any], Any] | None = wire.decode,
        keyed: bool = False,
        **kw: Any,
    ):
        super().__init__(socket_type, endpoint, **kw)
        self._decoder = decoder
        self._keyed = bool(keyed)
        self.last_topic: bytes | None = None

    def _drop(self, cause: str, detail: str) -> None:
        n = self.stats.dropped[cause] = self.stats.dropped[cause] + 1
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            logger.warning(
                "%s %s: dropped message (%s): %s [%d dropped for %s]",
                type(self).__name__,
                self._endpoint,
                cause,
                detail,
                n,
                cause,
            )

    def _recv_keyed(self) -> bytes | None:
        parts = self._sock.recv_multipart()
        self.stats.bytes_received += sum(len(p) for p in parts)
        if len(parts) != 2:
            self._drop("multipart", f"expected [key, message], got {len(parts)} parts")
            return None
        self.last_topic = parts[0]
        return parts[1]

    def recv(self, timeout_ms: int | None = None) -> Any:
        """Receive and decode the next good message, or ``None`` after the timeout.

        Malformed messages are counted, logged and skipped while the timeout runs. Returns
        ``None`` also once the transport is closed.

        :param timeout_ms: Override the default timeout (``-1``: wait forever, ``0``: poll).
        """
        sock = self._sock
        stats = self.stats
        decoder = self._decoder
        timeout = total = self.timeout_ms if timeout_ms is None else int(timeout_ms)
        t0 = time.monotonic()
        while True:
            try:
                if timeout != self._rcvtimeo:
                    sock.setsockopt(zmq.RCVTIMEO, timeout)
                    self._rcvtimeo = timeout
                if self._keyed:
                    data = self._recv_keyed()
                else:
                    data = sock.recv()
                    stats.bytes_received += len(data)
            except zmq.Again:
                stats.recv_timeouts += 1
                return None
            except zmq.ZMQError as e:  # closed socket / terminated context
                logger.debug("recv on %s stopped: %s", self._endpoint, e)
                return None
            if data is not None:
                if decoder is None:
                    stats.received += 1
                    return data
                try:
                    obj = decoder(data)
                except wire.WireError as e:
                    self._drop(e.cause, str(e))
                except ValueError as e:
                    self._drop("invalid", str(e))
                except Exception as e:  # a decoder bug must not kill the receiving process
                    self._drop("decoder_error", f"{type(e).__name__}: {e}")
                else:
                    stats.received += 1
                    return obj
            if total > 0:  # keep the caller's deadline across drops
                timeout = int((t0 + total / 1000 - time.monotonic()) * 1000)
                if timeout <= 0:
                    stats.recv_timeouts += 1
                    return None

    def __iter__(self) -> Iterator[Any]:
        """Yield decoded messages until a receive times out or the transport closes."""
        while True:
            obj = self.recv()
            if obj is None:
                return
            yield obj


class Publisher(_Sender):
    """PUB socket: fan-out, never blocks; drops at the HWM and before subscribers join.

    Binds ``tcp://127.0.0.1`` on a free port by default. Other keyword arguments as in
    :class:`Transport`, plus ``encoder`` (callable: object -> bytes).

    >>> with Publisher() as pub:
    ...     pub.send(b"nobody listens")
    True
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, **kw: Any):
        super().__init__(zmq.PUB, endpoint, **kw)


class Subscriber(_Receiver):
    """SUB socket; connects by default. ``topics`` are prefixes to subscribe (all by default).

    :param endpoint: Publisher endpoint.
    :param topics: Subscription prefixes (``[b""]`` = everything).
    :param keyed: Messages are ``[key, message]`` pairs (``Publisher.send(..., topic=key)``
        or gr-zeromq's ``key``); the key of the last one is left in :attr:`last_topic`.
        Otherwise each part is a message of its own.
    :param decoder: ``bytes -> object`` (default :func:`bridge.wire.decode`; ``None`` = raw).

    >>> with Publisher() as pub, Subscriber(pub.endpoint, timeout_ms=50) as sub:
    ...     sub.recv() is None
    True
    """

    def __init__(
        self, endpoint: str, *, topics: Iterable[bytes] = (b"",), bind: bool = False, **kw: Any
    ):
        self._topics = [t.encode() if isinstance(t, str) else bytes(t) for t in topics]
        kw.setdefault("linger_ms", 0)
        super().__init__(zmq.SUB, endpoint, bind=bind, **kw)

    def _setup(self, sock: zmq.Socket) -> None:
        for t in self._topics:
            sock.setsockopt(zmq.SUBSCRIBE, t)


class Pusher(_Sender):
    """PUSH socket: load-balanced pipeline; ``send`` waits up to the timeout at the HWM.

    Binds ``tcp://127.0.0.1`` on a free port by default (``bind=False`` to connect).

    >>> with Pusher(timeout_ms=10) as tx:
    ...     tx.send(b"no peer yet")
    False
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, **kw: Any):
        super().__init__(zmq.PUSH, endpoint, **kw)


class Puller(_Receiver):
    """PULL socket; binds ``tcp://127.0.0.1`` on a free port by default.

    :param decoder: ``bytes -> object`` (default :func:`bridge.wire.decode`; ``None`` = raw).

    >>> with Puller(timeout_ms=10) as rx:
    ...     rx.recv(), rx.stats.recv_timeouts
    (None, 1)
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, **kw: Any):
        kw.setdefault("linger_ms", 0)
        super().__init__(zmq.PULL, endpoint, **kw)
