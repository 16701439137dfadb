"""gsc_phy: link-level physical layer of gsc, composed from Sionna 2.x blocks.

Frame format, coding, mapping, OFDM, channels (incl. RIS), MIMO and receivers,
plus ``gsc link`` (``gsc_phy.cli``; the ``gsc`` root is ``gsc_cli``).
"""

__version__ = "0.1.0"
