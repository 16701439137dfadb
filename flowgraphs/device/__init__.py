"""Device flowgraphs: bridge the modem's ZeroMQ IQ streams to radios (radio interpreter).

``*.grc`` files and the Python that ``grcc`` generates from them (``uhd_tx``, ``uhd_rx``,
``pluto_tx``, ``pluto_rx``, ``zmq_channel``, ``sigmf_rx``, ``sigmf_tx``), the Python GNU
Radio blocks they use (:mod:`flowgraphs.device.gr_blocks`) and their GRC block YAML
(``flowgraphs/grc/device/``, in the one tree of gsc's block YAML, installed for GRC by
``make setup``). Regenerate with
``python3 -m flowgraphs.device.build``. Run them through :mod:`hardware.device`, which fills
the parameters from a radio profile and turns missing hardware into one clear line.
"""
