"""Install gsc's GNU Radio blocks the way out-of-tree modules are installed (radio side).

GNU Radio Companion and ``grcc`` then find the blocks with no environment variables:

* the block YAML (one tree, ``flowgraphs/grc/``, device blocks in ``grc/device/``) is linked
  file by file into a ``gsc/`` folder of a block path GRC always reads: a global one
  (``[grc] global_blocks_path``; on Debian ``/usr/local/share/gnuradio/grc/blocks``) when run
  as root, or ``~/.grc_gnuradio`` (GRC's own per-user block folder) with ``--user``;
* the Python blocks are put on the radio interpreter's path by a ``gsc.pth`` file (one line:
  the repository root) in its site-packages (``--user``: the user site-packages), so the
  ``from flowgraphs import gsc_gr`` of the generated flowgraphs imports.

Links, not copies: editing a block's YAML in the checkout is seen at once. ``--uninstall``
removes both; ``--check`` says whether they are in place and point at this checkout. Run it
with the interpreter GNU Radio was built for (``make setup`` does)::

    python3 flowgraphs/install_blocks.py            # as root: system-wide
    python3 flowgraphs/install_blocks.py --user     # this user only
    python3 flowgraphs/install_blocks.py --check

Standard library only (both interpreters import it; it needs no GNU Radio itself).
"""

from __future__ import annotations

import argparse
import configparser
import glob
import os
import site
import sys

__all__ = ["BLOCK_TREE", "REPO_ROOT", "block_files", "blocks_target", "pth_target",
           "install", "uninstall", "check", "main"]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
#: the one tree of gsc's block YAML
BLOCK_TREE = os.path.join(HERE, "grc")
PTH_NAME = "gsc.pth"
DEBIAN_BLOCKS = "/usr/share/gnuradio/grc/blocks"


def block_files() -> list[str]:
    """Every ``.yml`` under :data:`BLOCK_TREE` (block descriptions and the category tree)."""
    return sorted(glob.glob(os.path.join(BLOCK_TREE, "**", "*.yml"), recursive=True))


def _global_blocks_path() -> str:
    """A folder of GRC's ``[grc] global_blocks_path`` (GNU Radio's config files): the one
    under ``/usr/local`` when there is one (Debian lists ``/usr/local/share/gnuradio/grc/
    blocks``, which no package owns), else the first, else Debian's default."""
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    for conf in sorted(glob.glob("/etc/gnuradio/conf.d/*.conf")) + \
            sorted(glob.glob(os.path.join(sys.prefix, "etc", "gnuradio", "conf.d", "*.conf"))):
        try:
            cfg.read(conf, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
    paths = [p.strip() for p in cfg.get("grc", "global_blocks_path", fallback="").split(
        os.pathsep) if p.strip()]
    local = [p for p in paths if p.startswith("/usr/local/")]
    return (local or paths or [DEBIAN_BLOCKS])[0]


def blocks_target(user: bool) -> str:
    """Folder the YAML links go to: ``<global block path>/gsc`` or ``~/.grc_gnuradio/gsc``."""
    base = os.path.join(os.path.expanduser("~"), ".grc_gnuradio") if user \
        else _global_blocks_path()
    return os.path.join(base, "gsc")


def pth_target(user: bool) -> str:
    """Path of the ``gsc.pth`` file in this interpreter's (or the user's) site-packages."""
    where = site.getusersitepackages() if user else site.getsitepackages()[0]
    return os.path.join(where, PTH_NAME)


def _link_name(target_dir: str, src: str) -> str:
    return os.path.join(target_dir, os.path.relpath(src, BLOCK_TREE).replace(os.sep, "__"))


def uninstall(user: bool) -> list[str]:
    """Remove the YAML links and ``gsc.pth``; returns what was removed."""
    removed = []
    target = blocks_target(user)
    if os.path.isdir(target):
        for name in sorted(os.listdir(target)):
            path = os.path.join(target, name)
            if os.path.islink(path):
                os.unlink(path)
                removed.append(path)
        if not os.listdir(target):
            os.rmdir(target)
    pth = pth_target(user)
    if os.path.isfile(pth):
        os.unlink(pth)
        removed.append(pth)
    return removed


def install(user: bool) -> list[str]:
    """Link every block file into :func:`blocks_target` (stale links of an earlier install
    are replaced) and write ``gsc.pth``; returns the paths written."""
    uninstall(user)
    target = blocks_target(user)
    os.makedirs(target, exist_ok=True)
    written = []
    for src in block_files():
        dst = _link_name(target, src)
        os.symlink(src, dst)
        written.append(dst)
    pth = pth_target(user)
    os.makedirs(os.path.dirname(pth), exist_ok=True)
    with open(pth, "w", encoding="utf-8") as fh:
        fh.write(REPO_ROOT + "\n")
    written.append(pth)
    return written


def check(user: bool) -> list[str]:
    """What is missing or points elsewhere (empty when the install is current)."""
    problems = []
    target = blocks_target(user)
    for src in block_files():
        dst = _link_name(target, src)
        if not os.path.islink(dst) or os.path.realpath(dst) != os.path.realpath(src):
            problems.append(f"{dst} is not a link to {src}")
    pth = pth_target(user)
    try:
        with open(pth, encoding="utf-8") as fh:
            line = fh.read().strip()
    except OSError:
        line = None
    if line is None or os.path.realpath(line) != os.path.realpath(REPO_ROOT):
        problems.append(f"{pth} does not name {REPO_ROOT}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: install (default), ``--uninstall`` or ``--check``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user", action="store_true",
                    help="install for this user (~/.grc_gnuradio, user site-packages)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--uninstall", action="store_true")
    group.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.user)
        for p in problems:
            print(f"gsc blocks: {p}", file=sys.stderr)
        return 1 if problems else 0
    try:
        done = uninstall(args.user) if args.uninstall else install(args.user)
    except OSError as e:
        print(f"gsc: error: cannot write {e.filename}: {e.strerror} (run as root, or with "
              "--user)", file=sys.stderr)
        return 2
    verb = "removed" if args.uninstall else "installed"
    print(f"gsc blocks: {verb} {len(done)} files ({blocks_target(args.user)}, "
          f"{pth_target(args.user)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
