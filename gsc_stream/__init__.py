"""gsc_stream: the streaming link, joining the simulator (:mod:`gsc_phy`) to the GNU Radio
flowgraphs (:mod:`flowgraphs`, :mod:`hardware`) over the bridge (:mod:`bridge`).

Floor 4 of the layout (DESIGN.md): loopbacks (``loopback``, ``loopback_mimo``), the radio
link (``radio_link``), the decoder service (``decoder_service``), stream decoding
(``stream_decode``), the per-frame channel feed (``channel_feed``), grid export
(``grid_export``), the one-process emulated radio path (``emulated_link``), and what the
runners share: child-process helpers (``processes``) and loss accounting (``losses``).
Imported by ``gsc_semantic`` and the CLI, never by ``gsc_phy``, ``hardware`` or
``flowgraphs``.
"""
