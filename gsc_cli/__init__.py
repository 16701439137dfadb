"""gsc_cli: the ``gsc`` command line, floor 6 of the layout (above every package).

:mod:`gsc_cli.root` holds the click group and registers each package's commands; nothing
below imports it. ``python -m gsc_cli ARGS`` is ``gsc ARGS``.
"""
