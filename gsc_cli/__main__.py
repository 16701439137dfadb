"""``python -m gsc_cli ARGS``: the ``gsc`` console command."""

from gsc_cli.root import run

if __name__ == "__main__":
    run()
