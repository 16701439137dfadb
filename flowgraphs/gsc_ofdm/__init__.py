"""gsc_ofdm: the streaming OFDM modem of gsc in pure numpy (numpy 1.24 and 2.x).

Used by the GNU Radio blocks (``flowgraphs.gsc_gr``) on the radio side and by tests on both
sides; it never imports GNU Radio, torch or Sionna.

* :mod:`.grid` -- the resource grid exported from ``gsc_phy`` (data/pilot/null REs);
* :mod:`.preamble` -- the burst preamble;
* :mod:`.tx` -- data symbols -> bursts -> a sample stream;
* :mod:`.rx` -- detection, synchronisation, channel estimation, equalisation;
* :mod:`.channel` -- a streaming channel emulator (AWGN, multipath, CFO, timing, SFO);
* :mod:`.mimo` -- the 2x2 modem: two streams, per-frame precoding, LMMSE detection;
* :mod:`.mimo_channel` -- per-frame MIMO channel realisations (taps per antenna pair, RIS);
* :mod:`.messages` -- bridge messages between the radio side and the decoder.
"""

from .grid import GridError, GridLayout, grid_path
from .preamble import Preamble
from .rx import ChannelEstimator, RxBurst, StreamReceiver
from .tx import BurstModulator, BurstStream, ofdm_modulate

__all__ = [
    "GridError",
    "GridLayout",
    "grid_path",
    "Preamble",
    "BurstModulator",
    "BurstStream",
    "ofdm_modulate",
    "ChannelEstimator",
    "RxBurst",
    "StreamReceiver",
]
