"""flowgraphs: GNU Radio blocks and flowgraphs of gsc.

* ``gsc_ofdm`` -- the streaming modem in pure numpy (grid, preamble, TX, RX, channel
  emulator, bridge messages); imports under both interpreters;
* ``gsc_gr`` -- GNU Radio blocks wrapping it (radio interpreter only), GRC YAML in ``grc/``;
* ``gsc_tx.grc``, ``gsc_rx.grc``, ``gsc_loopback.grc`` and their generated ``*_gen.py``
  (``python3 flowgraphs/compile_grc.py`` regenerates them);
* ``device/`` -- radio and recording flowgraphs (USRP, Pluto, SigMF, ZMQ channel).
"""
