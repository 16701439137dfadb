"""hardware: radio profiles, device discovery/checks, RF impairment emulation, SigMF I/O.

Radio-side modules (``profiles``, ``impairments``, ``sigmf_lite``, ``calibration``,
``device``) import only the standard library, numpy and PyYAML at module level (GNU Radio is
imported inside ``device``'s functions), so both interpreters import them; ``sigmf_io`` and
``cli`` are ML side. The over-the-air runbook is ``hardware/README.md``.
"""
