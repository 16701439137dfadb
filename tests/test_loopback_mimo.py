"""``gsc loopback --mimo 2x2`` and the channel feed end to end (ML side; launches the radio
interpreter's flowgraph and the decoder service)."""

from __future__ import annotations

import json

import pytest

from gsc_cli.root import main as cli_main
from gsc_stream.loopback import radio_python_or_error


def _radio_or_skip():
    from bridge.common import ConfigError

    try:
        radio_python_or_error()
    except ConfigError as e:
        pytest.skip(str(e))


def _run(tmp_path, *args):
    rc = cli_main(["loopback", "--snr", "25", "--out", str(tmp_path), "--timeout", "240", *args])
    assert rc == 0, (tmp_path / "radio.log").read_text()
    with open(tmp_path / "loopback.json", encoding="utf-8") as fh:
        return json.load(fh)


def test_mimo_2x2_loopback_end_to_end(tmp_path):
    _radio_or_skip()
    r = _run(tmp_path, "--mimo", "2x2", "--channel", "awgn", "--frames", "20")
    assert r["config"]["mimo"] == "2x2" and r["config"]["precoder"] == "identity"
    assert r["frames_sent"] == 20
    assert r["frames_decoded"] + r["frames_lost_total"] == 20
    assert sum(r["frames_lost"].values()) == r["frames_lost_total"]
    assert r["frames_decoded"] >= 19  # identity channel at 25 dB
    assert r["evm_db"] < -15
    assert r["channel_feed"]["realisations_used"] == 20
    assert r["channel_feed"]["no_realisation"] == 0


def test_tdl_a_through_the_feed_end_to_end(tmp_path):
    _radio_or_skip()
    r = _run(tmp_path, "--channel", "tdl-a", "--channel-feed", "--frames", "12")
    assert r["config"]["channel_source"] == "gsc_phy-feed"
    assert r["channel_feed"]["realisations_sent"] == 12
    assert r["channel_feed"]["realisations_used"] + r["channel_feed"]["no_realisation"] == 12
    assert r["frames_decoded"] >= 9  # Rayleigh TDL-A at 25 dB: an occasional deep fade


def test_bad_mimo_options_are_one_line(tmp_path, capsys):
    for args, words in ((["--mimo", "4x4"], "2x2"),
                        (["--mimo", "2x2", "--precoder", "svd", "--channel", "ris"], "svd"),
                        (["--precoder", "svd"], "--mimo"),
                        (["--channel", "umi", "--channel-feed"], "channel")):
        assert cli_main(["loopback", "--out", str(tmp_path), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gsc: error:") and words in err and len(err.splitlines()) == 1
