"""gsc_gr: GNU Radio blocks of gsc (radio interpreter only; the math lives in ``gsc_ofdm``).

* :class:`ofdm_burst_tx` -- frames from ZeroMQ (or PDUs) -> tagged bursts of OFDM samples;
* :class:`channel_emulator` -- multipath, timing/sampling offset, CFO and AWGN;
* :class:`ofdm_burst_rx` -- samples -> equalised symbols and noise variances over ZeroMQ
  (and PDUs);
* :class:`mimo_burst_tx`, :class:`precoder`, :class:`mimo_burst_rx` -- the MIMO (S-stream)
  burst link: stream signals, per-burst precoding onto the TX antennas, Nr-antenna receiver;
* :class:`channel_feed` -- Nt x Nr channel per burst from local TDL draws or from gsc_phy
  realisations over ZeroMQ (TDL/CDL/RIS).

Their ``.block.yml`` files are in ``flowgraphs/grc``; ``make setup``
(``flowgraphs/install_blocks.py``) installs them where GRC looks and puts the repository
root on the radio interpreter's path, so GRC and ``grcc`` need no environment variables.
"""

try:
    from gnuradio import gr  # noqa: F401
except ImportError as _e:  # one clear line instead of a traceback deep in a flowgraph
    raise ImportError(
        "gsc's GNU Radio blocks need GNU Radio 3.10 with gr-zeromq for this Python "
        f"({_e}); install it with 'apt-get install gnuradio python3-zmq' and run under the "
        "interpreter GNU Radio was built for (e.g. /usr/bin/python3)"
    ) from None

from .burst_rx import ofdm_burst_rx
from .burst_tx import ofdm_burst_tx
from .channel import channel_emulator
from .channel_feed import channel_feed
from .mimo_rx import mimo_burst_rx
from .mimo_tx import mimo_burst_tx
from .precoder import precoder

__all__ = [
    "ofdm_burst_tx",
    "ofdm_burst_rx",
    "channel_emulator",
    "channel_feed",
    "mimo_burst_tx",
    "precoder",
    "mimo_burst_rx",
]
