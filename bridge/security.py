"""CurveZMQ for links that leave the machine: key files, an authoriser, secured sockets.

gsc binds 127.0.0.1 by default. A transport that binds any other address must be
encrypted and authenticated with CurveZMQ (pyzmq's ``zmq.auth``): the server holds a key
pair and a directory of authorised client public keys; a client holds its own key pair and
the server's public key. A peer whose key is not in that directory is refused by ZAP.

Key files are ZeroMQ certificates (``NAME.key`` public, ``NAME.key_secret`` secret, mode
0600), made by :func:`generate_keypair` (``gsc keys generate DIR --name NAME``).

>>> import tempfile, zmq
>>> d = tempfile.mkdtemp()
>>> server = generate_keypair(d, "server"); client = generate_keypair(d + "/clients", "c1")
>>> ctx = zmq.Context()
>>> with CurveServer(ctx, server.secret_path, d + "/clients") as auth:
...     rep = auth.secure(ctx.socket(zmq.PULL))
...     port = rep.bind_to_random_port("tcp://127.0.0.1")
...     req = secure_client(ctx.socket(zmq.PUSH), client.secret_path, server.public_path)
...     _ = req.connect(f"tcp://127.0.0.1:{port}"); req.send(b"hi")
...     rep.poll(3000) and rep.recv()
...     req.close(0); rep.close(0)
b'hi'
>>> ctx.term()
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

__all__ = ["KeyPair", "CurveConfig", "generate_keypair", "load_keypair", "CurveServer",
           "secure_client", "secure_server_socket", "release_server_socket", "require_curve",
           "server_curve", "client_curve"]


@dataclass(frozen=True)
class KeyPair:
    """Paths of a certificate pair on disk."""

    public_path: str
    secret_path: str


def require_curve() -> None:
    """Raise ``RuntimeError`` (one line) when this libzmq lacks CURVE support."""
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq has no CURVE support: install libzmq built with libsodium")


def generate_keypair(key_dir: str, name: str) -> KeyPair:
    """Create ``key_dir/NAME.key`` and ``key_dir/NAME.key_secret`` (0600); refuse to overwrite."""
    require_curve()
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"key name {name!r} must be a plain file name")
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    pub = os.path.join(key_dir, f"{name}.key")
    sec = os.path.join(key_dir, f"{name}.key_secret")
    if os.path.exists(pub) or os.path.exists(sec):
        raise ValueError(f"{pub} already exists: pick another --name or remove the old keys")
    pub, sec = zmq.auth.create_certificates(key_dir, name)
    os.chmod(sec, 0o600)
    return KeyPair(pub, sec)


def load_keypair(secret_path: str) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from a ``.key_secret`` certificate, with clear errors."""
    if not os.path.isfile(secret_path):
        raise ValueError(f"secret key file {secret_path} not found (gsc keys generate makes one)")
    try:
        public, secret = zmq.auth.load_certificate(secret_path)
    except (ValueError, OSError) as e:
        raise ValueError(f"{secret_path} is not a ZeroMQ certificate: {e}") from None
    if secret is None:
        raise ValueError(f"{secret_path} holds no secret key (is it the .key public file?)")
    return public, secret


def _load_public(path: str) -> bytes:
    if not os.path.isfile(path):
        raise ValueError(f"public key file {path} not found")
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path} is not a ZeroMQ certificate: {e}") from None
    return public


class CurveServer:
    """ZAP authoriser for CURVE servers: only keys found in ``authorized_dir`` get in.

    :param context: The zmq context the secured sockets belong to.
    :param secret_path: The server's ``.key_secret`` certificate.
    :param authorized_dir: Directory of authorised clients' ``.key`` certificates.

    Use as a context manager (starts/stops the authenticator thread); call
    :meth:`secure` on each server socket *before* binding it.
    """

    def __init__(self, context: zmq.Context, secret_path: str, authorized_dir: str) -> None:
        require_curve()
        if not os.path.isdir(authorized_dir):
            raise ValueError(f"authorised-keys directory {authorized_dir} not found")
        self.public, self._secret = load_keypair(secret_path)
        self._ctx = context
        self._dir = authorized_dir
        self._domain: str | None = None

    def start(self) -> CurveServer:
        """Start (or share) the context's ZAP authenticator for this directory."""
        if self._domain is None:
            self._domain = _AUTHENTICATORS.acquire(self._ctx, self._dir)
        return self

    def stop(self) -> None:
        """Release the authenticator (its thread stops with its last user)."""
        if self._domain is not None:
            _AUTHENTICATORS.release(self._ctx, self._domain)
            self._domain = None

    def __enter__(self) -> CurveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def secure(self, sock: zmq.Socket) -> zmq.Socket:
        """Make ``sock`` a CURVE server with this key pair (after :meth:`start`)."""
        if self._domain is None:
            raise RuntimeError("CurveServer.secure before start(): no authenticator runs")
        sock.zap_domain = self._domain.encode()
        sock.curve_secretkey = self._secret
        sock.curve_publickey = self.public
        sock.curve_server = True
        return sock


def secure_client(sock: zmq.Socket, secret_path: str, server_public_path: str) -> zmq.Socket:
    """Make ``sock`` a CURVE client of the server whose public certificate is given."""
    require_curve()
    public, secret = load_keypair(secret_path)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = _load_public(server_public_path)
    return sock


@dataclass(frozen=True)
class CurveConfig:
    """CurveZMQ keys of one bridge transport (``curve=`` of :class:`bridge.transport.Pusher`...).

    A *server* (the side that binds, usually) gives its own secret certificate and the
    directory of authorised clients' public certificates; a *client* gives its own secret
    certificate and the server's public certificate. Exactly one of ``authorized_dir`` and
    ``server_public_path`` is set.

    :param secret_path: This side's ``NAME.key_secret`` (``gsc keys generate``).
    :param authorized_dir: Server: directory of authorised ``*.key`` files (read at start).
    :param server_public_path: Client: the server's ``NAME.key`` file.

    >>> CurveConfig("k/server.key_secret", authorized_dir="k/clients").is_server
    True
    >>> CurveConfig("k/c.key_secret")
    Traceback (most recent call last):
    ...
    ValueError: CurveConfig needs authorized_dir (server) or server_public_path (client)
    """

    secret_path: str
    authorized_dir: str | None = None
    server_public_path: str | None = None

    def __post_init__(self) -> None:
        if (self.authorized_dir is None) == (self.server_public_path is None):
            raise ValueError(
                "CurveConfig needs authorized_dir (server) or server_public_path (client)"
            )

    @property
    def is_server(self) -> bool:
        """Whether these are server keys (an authorised-clients directory is set)."""
        return self.authorized_dir is not None


def server_curve(secret_path: str = "", authorized_dir: str = "") -> CurveConfig | None:
    """CURVE server keys from two optional paths ('' = off), as block parameters give them;
    checked now, so a bad path fails at construction with one line.

    :param secret_path: The server's ``NAME.key_secret``.
    :param authorized_dir: Directory of authorised clients' ``*.key`` files.
    :output: A server :class:`CurveConfig`, or ``None`` when both are empty.
    :raises ValueError: only one given, or missing/unreadable key files.

    >>> server_curve() is None
    True
    >>> server_curve(authorized_dir="keys/clients")
    Traceback (most recent call last):
    ...
    ValueError: CurveZMQ server keys need a secret key file and an authorised-keys directory
    """
    if not (secret_path or authorized_dir):
        return None
    if not (secret_path and authorized_dir):
        raise ValueError("CurveZMQ server keys need a secret key file and an authorised-keys "
                         "directory")
    load_keypair(secret_path)
    if not os.path.isdir(authorized_dir):
        raise ValueError(f"authorised-keys directory {authorized_dir} not found")
    return CurveConfig(secret_path, authorized_dir=authorized_dir)


def client_curve(secret_path: str = "", server_public_path: str = "") -> CurveConfig | None:
    """CURVE client keys from two optional paths ('' or ``None`` = off), as CLI options give
    them; checked now (one-line ``ValueError`` for half a pair or a bad file).

    :param secret_path: This client's ``NAME.key_secret``.
    :param server_public_path: The server's ``NAME.key``.
    :output: A client :class:`CurveConfig`, or ``None`` when both are empty.

    >>> client_curve("", "") is None
    True
    """
    if not (secret_path or server_public_path):
        return None
    if not (secret_path and server_public_path):
        raise ValueError("CurveZMQ client keys need a secret key file and the server's public "
                         "key file")
    load_keypair(secret_path)
    _load_public(server_public_path)
    return CurveConfig(secret_path, server_public_path=server_public_path)


class _SharedAuthenticators:
    """One ZAP authenticator thread per context, shared by its CURVE server sockets.

    ZeroMQ allows one ZAP handler per context; each authorised-keys directory gets its own
    ZAP domain in it. The thread stops when the last socket using it is released.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ctx: dict[zmq.Context, tuple[ThreadAuthenticator, dict[str, int]]] = {}

    def acquire(self, context: zmq.Context, authorized_dir: str) -> str:
        """Start (or reuse) the context's authenticator; the ZAP domain for ``authorized_dir``."""
        location = os.path.realpath(authorized_dir)
        domain = "gsc-" + hashlib.sha256(location.encode()).hexdigest()[:16]
        with self._lock:
            entry = self._by_ctx.get(context)
            if entry is None:
                auth = ThreadAuthenticator(context)
                auth.start()
                entry = self._by_ctx[context] = (auth, {})
            auth, users = entry
            if domain not in users:
                auth.configure_curve(domain=domain, location=location)
            users[domain] = users.get(domain, 0) + 1
        return domain

    def release(self, context: zmq.Context, domain: str) -> None:
        """Drop one user of ``domain``; stop the thread when the context has none left."""
        with self._lock:
            entry = self._by_ctx.get(context)
            if entry is None or domain not in entry[1]:
                return
            auth, users = entry
            users[domain] -= 1
            if users[domain] == 0:
                del users[domain]
            if not users:
                del self._by_ctx[context]
                auth.stop()


_AUTHENTICATORS = _SharedAuthenticators()


def secure_server_socket(sock: zmq.Socket, context: zmq.Context, curve: CurveConfig) -> str:
    """Make ``sock`` a CURVE server admitting only ``curve.authorized_dir``'s keys.

    Call before bind/connect; returns the ZAP domain to pass to
    :func:`release_server_socket` once the socket is closed.

    :raises ValueError: missing or unreadable key files or directory (one line).
    """
    require_curve()
    if not curve.is_server:
        raise ValueError("server sockets need CurveConfig(authorized_dir=...)")
    if not os.path.isdir(curve.authorized_dir):
        raise ValueError(f"authorised-keys directory {curve.authorized_dir} not found")
    public, secret = load_keypair(curve.secret_path)
    domain = _AUTHENTICATORS.acquire(context, curve.authorized_dir)
    sock.zap_domain = domain.encode()
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return domain


def release_server_socket(context: zmq.Context, domain: str) -> None:
    """Undo :func:`secure_server_socket`'s hold on the context's authenticator."""
    _AUTHENTICATORS.release(context, domain)
