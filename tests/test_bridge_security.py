"""CurveZMQ: authorised clients get through, unauthenticated and unknown peers do not."""

import os
import stat

import pytest
import zmq

from bridge.security import CurveServer, generate_keypair, load_keypair, secure_client

pytestmark = pytest.mark.both


@pytest.fixture()
def keys(tmp_path):
    server = generate_keypair(str(tmp_path / "server"), "server")
    good = generate_keypair(str(tmp_path / "authorized"), "good")
    bad = generate_keypair(str(tmp_path / "strangers"), "bad")
    return tmp_path, server, good, bad


def _serve(ctx, server, authorized):
    auth = CurveServer(ctx, server.secret_path, authorized).start()
    pull = ctx.socket(zmq.PULL)
    auth.secure(pull)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    return auth, pull, port


def _push(ctx, port, secret=None, server_public=None):
    push = ctx.socket(zmq.PUSH)
    push.linger = 0
    if secret:
        secure_client(push, secret, server_public)
    push.connect(f"tcp://127.0.0.1:{port}")
    return push


def test_authorised_client_is_served_and_others_refused(keys):
    tmp, server, good, bad = keys
    ctx = zmq.Context()
    auth, pull, port = _serve(ctx, server, str(tmp / "authorized"))
    try:
        plain = _push(ctx, port)
        stranger = _push(ctx, port, bad.secret_path, server.public_path)
        friend = _push(ctx, port, good.secret_path, server.public_path)
        for sock, msg in ((plain, b"plain"), (stranger, b"stranger"), (friend, b"friend")):
            try:
                sock.send(msg, flags=zmq.NOBLOCK)
            except zmq.Again:
                pass  # no handshake completed: nothing queued, as expected for refused peers
        got = []
        while pull.poll(1500):
            got.append(pull.recv())
        assert got == [b"friend"]
    finally:
        for s in (plain, stranger, friend, pull):
            s.close(0)
        auth.stop()
        ctx.term()


def test_key_files(keys):
    tmp, server, good, _ = keys
    assert stat.S_IMODE(os.stat(server.secret_path).st_mode) == 0o600
    public, secret = load_keypair(server.secret_path)
    assert len(public) == 40 and len(secret) == 40
    with pytest.raises(ValueError, match="already exists"):
        generate_keypair(str(tmp / "server"), "server")
    with pytest.raises(ValueError, match="holds no secret"):
        load_keypair(server.public_path)
    with pytest.raises(ValueError, match="not found"):
        load_keypair(str(tmp / "missing.key_secret"))
    with pytest.raises(ValueError, match="plain file name"):
        generate_keypair(str(tmp), "../evil")


def test_doctest():
    import doctest

    import bridge.security as sec

    assert doctest.testmod(sec).failed == 0


# ------------------------------------------------ enforced by the bridge transports


def test_remote_bind_admits_only_authorised_keys(keys):
    """A Puller bound beyond loopback serves the authorised key only (plain and unknown
    peers get nothing through), and the authenticator thread goes with the last socket."""
    from bridge.transport import CurveConfig, Puller, Pusher
    from bridge.wire import Frame

    tmp, server, good, bad = keys
    ctx = zmq.Context()
    server_keys = CurveConfig(server.secret_path, authorized_dir=str(tmp / "authorized"))
    senders = []
    try:
        rx = Puller("tcp://0.0.0.0:*", allow_remote=True, curve=server_keys, context=ctx,
                    timeout_ms=1500)
        port = rx.endpoint.rsplit(":", 1)[1]
        ep = f"tcp://127.0.0.1:{port}"
        for name, curve in (
            ("plain", None),
            ("stranger", CurveConfig(bad.secret_path, server_public_path=server.public_path)),
            ("friend", CurveConfig(good.secret_path, server_public_path=server.public_path)),
        ):
            tx = Pusher(ep, bind=False, curve=curve, context=ctx, timeout_ms=0, linger_ms=0)
            senders.append(tx)
            for seq in range(3):
                tx.send(Frame.from_json({"from": name}, seq=seq))
        got = []
        while (f := rx.recv()) is not None:
            got.append(f.json()["from"])
        assert got == ["friend"] * 3
        assert rx.stats.dropped_total == 0  # refused peers never reach the decoder
        rx.close()
        from bridge.security import _AUTHENTICATORS

        assert ctx not in _AUTHENTICATORS._by_ctx  # thread stopped with its last socket
    finally:
        for tx in senders:
            tx.close(0)
        ctx.destroy(linger=0)


def test_transport_key_errors_are_one_line(keys, tmp_path):
    from bridge.transport import CurveConfig, Puller, Pusher

    _, server, good, _ = keys
    ctx = zmq.Context()
    try:
        with pytest.raises(ValueError, match="authorised-keys directory .* not found"):
            Puller("tcp://0.0.0.0:*", allow_remote=True, context=ctx,
                   curve=CurveConfig(server.secret_path, authorized_dir=str(tmp_path / "no")))
        with pytest.raises(ValueError, match="holds no secret"):
            Pusher("tcp://127.0.0.1:9", bind=False, context=ctx,
                   curve=CurveConfig(server.public_path, server_public_path=server.public_path))
        with pytest.raises(ValueError, match="authorized_dir .server. or server_public_path"):
            CurveConfig(good.secret_path)
    finally:
        ctx.destroy(linger=0)


def test_two_servers_in_one_context_keep_their_own_authorised_keys(keys, tmp_path):
    """One ZAP handler serves the whole context: each server's directory is its own domain,
    so a key authorised for one server is refused by the other."""
    from bridge.transport import CurveConfig, Puller, Pusher
    from bridge.wire import Frame

    tmp, server, good, bad = keys
    ctx = zmq.Context()
    socks = []
    try:
        rx_a = Puller(curve=CurveConfig(server.secret_path,
                                        authorized_dir=str(tmp / "authorized")),
                      context=ctx, timeout_ms=1500)
        rx_b = Puller(curve=CurveConfig(server.secret_path,
                                        authorized_dir=str(tmp / "strangers")),
                      context=ctx, timeout_ms=1500)
        socks += [rx_a, rx_b]
        for rx in (rx_a, rx_b):
            for name, pair in (("good", good), ("bad", bad)):
                tx = Pusher(rx.endpoint, bind=False, context=ctx, timeout_ms=0, linger_ms=0,
                            curve=CurveConfig(pair.secret_path,
                                              server_public_path=server.public_path))
                socks.append(tx)
                tx.send(Frame.from_json(name))
        got_a = [f.json() for f in iter(rx_a.recv, None)]
        got_b = [f.json() for f in iter(rx_b.recv, None)]
        assert (got_a, got_b) == (["good"], ["bad"])
    finally:
        for s in socks:
            s.close(0)
        ctx.destroy(linger=0)


# ------------------------------------------------ enforced by the reliable RX->decoder queue


def test_reliable_queue_remote_bind_serves_only_authorised_consumers(keys):
    """The RX block's queue bound on all interfaces with CURVE server keys: a plain consumer
    and one with an unknown key get no frame and never count as consumers (they are even
    given more credit, so a leak would send them frames first); the authorised one gets all."""
    from bridge.reliable import ReliableConsumer, ReliableQueue
    from bridge.security import CurveConfig
    from bridge.wire import Frame, PayloadKind

    tmp, server, good, bad = keys
    ctx = zmq.Context()
    server_keys = CurveConfig(server.secret_path, authorized_dir=str(tmp / "authorized"))
    consumers = []
    q = ReliableQueue("tcp://0.0.0.0:*", allow_remote=True, curve=server_keys, context=ctx)
    try:
        q.start()
        ep = "tcp://127.0.0.1:" + q.endpoint.rsplit(":", 1)[1]
        plain = ReliableConsumer(ep, name="plain", credit=64, context=ctx)
        stranger = ReliableConsumer(ep, name="stranger", credit=64, context=ctx, curve=CurveConfig(
            bad.secret_path, server_public_path=server.public_path))
        consumers += [plain, stranger]
        assert plain.get(timeout_s=0.5) is None  # give the refused handshakes a chance
        friend = ReliableConsumer(ep, name="friend", credit=1, context=ctx, curve=CurveConfig(
            good.secret_path, server_public_path=server.public_path))
        consumers.append(friend)
        for seq in range(6):
            assert q.put(Frame(PayloadKind.ACK, b"job%d" % seq, stream_id=3, seq=seq))
        got = []
        for _ in range(6):
            f = friend.get(timeout_s=10)
            assert f is not None
            got.append(f.seq)
            friend.ack(f)
        stats = q.drain(timeout_s=10)
        assert sorted(got) == list(range(6))
        assert stats["acked"] == 6 and stats["consumers"] == 1
        assert plain.get(timeout_s=0) is None and stranger.get(timeout_s=0) is None
        assert plain.counters["received"] == stranger.counters["received"] == 0
    finally:
        q.close()
        for c in consumers:
            c.close()
        ctx.destroy(linger=0)


def test_reliable_queue_remote_bind_needs_server_keys(keys):
    from bridge.reliable import ReliableConsumer, ReliableQueue
    from bridge.security import CurveConfig

    tmp, server, good, _ = keys
    with pytest.raises(ValueError, match="needs CurveZMQ"):
        ReliableQueue("tcp://0.0.0.0:5998", allow_remote=True)
    with pytest.raises(ValueError, match="pass allow_remote=True"):
        ReliableQueue("tcp://0.0.0.0:5998", curve=CurveConfig(
            server.secret_path, authorized_dir=str(tmp / "authorized")))
    client_keys = CurveConfig(good.secret_path, server_public_path=server.public_path)
    with pytest.raises(ValueError, match="pass server keys"):
        ReliableQueue("tcp://127.0.0.1:5998", curve=client_keys)
    with pytest.raises(ValueError, match="not found"):
        ReliableConsumer("tcp://127.0.0.1:5998", curve=CurveConfig(
            str(tmp / "missing.key_secret"), server_public_path=server.public_path))


@pytest.mark.radio
@pytest.mark.parametrize("block", ["ofdm_burst_rx", "mimo_burst_rx"])
def test_rx_blocks_need_curve_keys_for_a_remote_decoder_endpoint(keys, block):
    pytest.importorskip("gnuradio")
    from flowgraphs import gsc_gr

    tmp, server, good, _ = keys
    make = getattr(gsc_gr, block)
    with pytest.raises(ValueError, match="is not loopback: set curve_secret"):
        make(endpoint="tcp://0.0.0.0:5997")
    with pytest.raises(ValueError, match="need a secret key file and an authorised-keys"):
        make(endpoint="tcp://0.0.0.0:5997", curve_secret=server.secret_path)
    with pytest.raises(ValueError, match="holds no secret key"):
        make(endpoint="tcp://0.0.0.0:5997", curve_secret=server.public_path,
             curve_authorized_dir=str(tmp / "authorized"))
    rx = make(endpoint="tcp://0.0.0.0:*", curve_secret=server.secret_path,
              curve_authorized_dir=str(tmp / "authorized"), send_timeout_ms=0)
    assert rx.curve is not None and rx.curve.authorized_dir == str(tmp / "authorized")
    rx.start()
    try:
        assert rx._queue._zap_domain is not None  # the bound queue is a CURVE server
    finally:
        rx.stop()
    assert make(endpoint="tcp://127.0.0.1:5997").curve is None  # loopback: keys optional


def test_decoder_serve_curve_options_are_checked_in_one_line(keys, capsys):
    """``gsc decoder serve``: half a key pair or a missing key file is one line, exit 2,
    before any worker starts."""
    pytest.importorskip("torch")  # the decoder service lives on the ML side
    from gsc_stream.decoder_service import main

    tmp, server, good, _ = keys
    base = ["serve", "--connect", "tcp://127.0.0.1:9", "--out", str(tmp / "out")]
    cases = (
        (["--curve-secret", good.secret_path], "need a secret key file and the server's public"),
        (["--curve-server-key", server.public_path], "need a secret key file"),
        (["--curve-secret", str(tmp / "nope.key_secret"), "--curve-server-key",
          server.public_path], "nope.key_secret not found"),
        (["--curve-secret", good.secret_path, "--curve-server-key", str(tmp / "nope.key")],
         "nope.key not found"),
    )
    for extra, message in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gsc: error: --curve-secret/--curve-server-key:") and message in err
        assert "\n" not in err
    assert not (tmp / "out").exists()  # refused before anything ran


def test_remote_decoder_worker_decodes_over_curve(keys, tmp_path):
    """The remote case end to end: the RX queue bound on all interfaces with CURVE keys, a
    decoder worker given its own secret and the RX host's public key decodes every frame."""
    pytest.importorskip("torch")  # the decoder worker lives on the ML side
    import threading

    import numpy as np

    from bridge.reliable import ReliableQueue
    from bridge.security import CurveConfig
    from bridge.transport import Puller
    from flowgraphs.gsc_ofdm import BurstModulator, GridLayout, StreamReceiver
    from flowgraphs.gsc_ofdm.messages import rx_frame
    from gsc_phy.config import LinkConfig
    from gsc_stream.decoder_service import DecoderWorker
    from gsc_stream.stream_decode import StreamCodec, loopback_payload

    tmp, server, good, _ = keys
    codec, lay = StreamCodec(LinkConfig()), GridLayout.load("default")
    f = codec.frame
    _, x = codec.encode(np.stack([loopback_payload(s, 0, f.codewords_per_frame,
                                                   f.payload_bits_per_block) for s in range(2)]))
    mod, recv = BurstModulator(lay), StreamReceiver(lay)
    sig = np.concatenate([np.concatenate([mod.modulate(xi), np.zeros(300, np.complex64)])
                          for xi in x])
    bursts = recv.process(sig) + recv.flush()
    q = ReliableQueue("tcp://0.0.0.0:*", allow_remote=True, curve=CurveConfig(
        server.secret_path, authorized_dir=str(tmp / "authorized"))).start()
    ep = "tcp://127.0.0.1:" + q.endpoint.rsplit(":", 1)[1]
    with Puller(timeout_ms=60000) as results:
        w = DecoderWorker(ep, results=results.endpoint, out_dir=str(tmp_path), batch_max=2,
                          curve_secret=good.secret_path, curve_server_key=server.public_path)
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        try:
            assert results.recv().json()["type"] == "ready"
            for b in bursts:
                q.put(rx_frame(b.x_hat, b.no_eff, {}, seq=b.seq, format_id=lay.format_id))
            got = [results.recv().json() for _ in bursts]
            stats = q.drain(timeout_s=30)
        finally:
            w.stop_event.set()
            t.join(30)
            q.close()
    assert sorted(r["tx_seq"] for r in got) == [0, 1] and all(r["ok"] == [True] for r in got)
    assert stats["acked"] == 2 and stats.get("decoder_absent", 0) == 0


def test_decoder_results_go_over_curve_to_a_remote_receiver(keys, tmp_path, capsys):
    """``--results-server-key``: the worker's results reach a CURVE results receiver bound on
    all interfaces; a worker without the key reaches nothing; half the options is one line."""
    pytest.importorskip("torch")  # the decoder worker lives on the ML side
    import threading

    from bridge.security import CurveConfig
    from bridge.transport import Puller
    from gsc_stream.decoder_service import DecoderWorker, main

    tmp, server, good, _ = keys
    assert main(["serve", "--connect", "tcp://127.0.0.1:9", "--results-server-key",
                 server.public_path, "--out", str(tmp / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gsc: error: --results-server-key:") and "--curve-secret" in err
    curve = CurveConfig(server.secret_path, authorized_dir=str(tmp / "authorized"))
    with Puller("tcp://0.0.0.0:*", allow_remote=True, curve=curve, timeout_ms=3000) as results:
        ep = "tcp://127.0.0.1:" + results.endpoint.rsplit(":", 1)[1]
        seen = {}
        for name, kw in (("plain", {}), ("curve", {"curve_secret": good.secret_path,
                                                   "results_server_key": server.public_path})):
            w = DecoderWorker("tcp://127.0.0.1:9", results=ep, out_dir=str(tmp_path),
                              worker=len(seen), **kw)
            t = threading.Thread(target=w.run, daemon=True)
            t.start()
            msg = results.recv()
            seen[name] = None if msg is None else msg.json()
            w.stop_event.set()
            t.join(30)
    assert seen["plain"] is None
    assert seen["curve"]["type"] == "ready" and seen["curve"]["worker"] == 1
