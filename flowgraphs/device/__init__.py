"""Device flowgraphs: bridge the modem's ZeroMQ IQ streams to radios (radio interpreter).

``*.grc`` files and the Python that ``grcc`` generates from them (``uhd_tx``, ``uhd_rx``,
``pluto_tx``, ``pluto_rx``, ``zmq_channel``, ``sigmf_rx``, ``sigmf_tx``), the Python GNU
Radio blocks they use (:mod:`flowgraphs.device.gr_blocks`) and their GRC block YAML
(``grc/``; point ``GRC_BLOCKS_PATH`` there to open the flowgraphs in GRC). Regenerate with
``python3 -m flowgraphs.device.build``. Run them through :mod:`hardware.device`, which fills
the parameters from a radio profile and turns missing hardware into one clear line.
"""
