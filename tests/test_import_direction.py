"""Import arrows run one way, bottom to top (DESIGN.md, "Layout"), and no module imports
another module's ``_private`` names.

Every project module is parsed with :mod:`ast` (nothing is imported, so this runs under both
interpreters and needs neither torch nor GNU Radio). An import counts wherever it stands (top
level or inside a function), and so does a ``"package.module:attr"`` string or an
``importlib.import_module("package.module")`` call: a registry by string is an import too.

Floors: 1 ``bridge``; 2 ``flowgraphs``, ``hardware``; 3 ``gsc_phy``; 4 ``gsc_stream``;
5 ``gsc_semantic``; 6 ``gsc_cli`` and ``benchmarks``. A module may import its own floor and
the floors below, except that ``gsc_phy`` (the simulator only) imports neither ``hardware``
nor ``flowgraphs``; packages on one floor must not import each other both ways; floors 1-2
(the radio side) import neither the ML packages nor torch/Sionna/diffusers.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: top-level package (or folder) -> floor
FLOORS: dict[str, int] = {
    "bridge": 1,
    "flowgraphs": 2,
    "hardware": 2,
    "gsc_phy": 3,
    "gsc_stream": 4,
    "gsc_semantic": 5,
    "gsc_cli": 6,
    "benchmarks": 6,
}
#: packages a floor may not import although they sit below it (the simulator stays a simulator)
FORBIDDEN: dict[str, set[str]] = {"gsc_phy": {"hardware", "flowgraphs"}}
#: third-party packages of the ML side that floors 1-2 must not import
ML_ONLY = {"torch", "sionna", "diffusers", "torchvision", "safetensors"}
#: folders whose modules are checked for private imports only (they sit above everything);
#: ``tests/`` is left out: white-box tests of a module's private helpers are its tests' job
PRIVATE_ONLY = ("examples", "scripts")

_STRING_IMPORT = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+):[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Arrow:
    """One import found in a source file."""

    path: str
    line: int
    module: str  # absolute dotted name imported
    names: tuple[str, ...] = ()  # names taken by ``from module import names``
    typing_only: bool = False  # under ``if TYPE_CHECKING:`` (never runs)


def module_name(rel_path: str) -> str:
    """Dotted module name of a repository-relative ``.py`` path."""
    parts = rel_path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    """Absolute name of a relative ``from`` import inside module ``current``."""
    if level == 0:
        return module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def parse_arrows(source: str, rel_path: str) -> list[Arrow]:
    """Every import in ``source`` (the file at ``rel_path``), relative ones made absolute."""
    tree = ast.parse(source, filename=rel_path)
    current = module_name(rel_path)
    is_package = rel_path.endswith("__init__.py")
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    arrows: list[Arrow] = []
    for node in ast.walk(tree):
        t = id(node) in typing_only
        if isinstance(node, ast.Import):
            arrows += [Arrow(rel_path, node.lineno, a.name, typing_only=t) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(current, is_package, node.level, node.module)
            arrows.append(Arrow(rel_path, node.lineno, mod, tuple(a.name for a in node.names),
                                typing_only=t))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = _STRING_IMPORT.match(node.value)
            if m and m.group(1).split(".")[0] in FLOORS:
                arrows.append(Arrow(rel_path, node.lineno, m.group(1)))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) == "import_module")):
            arrows.append(Arrow(rel_path, node.lineno, node.args[0].value))
    return arrows


def floor_of(name: str) -> int | None:
    return FLOORS.get(name.split(".")[0])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(arrows: list[Arrow], check_direction: bool = True) -> list[str]:
    """Wrong-way arrows and private-name imports among ``arrows``, one line each."""
    out = []
    for a in arrows:
        src = module_name(a.path)
        here, there = floor_of(src), floor_of(a.module)
        if check_direction and here is not None:
            if there is not None and there > here:
                out.append(f"{a.path}:{a.line}: {src} (floor {here}) imports {a.module} "
                           f"(floor {there})")
            if a.module.split(".")[0] in FORBIDDEN.get(src.split(".")[0], ()):
                out.append(f"{a.path}:{a.line}: {src.split('.')[0]} must not import "
                           f"{a.module.split('.')[0]} ({a.module})")
            if here <= 2 and a.module.split(".")[0] in ML_ONLY:
                out.append(f"{a.path}:{a.line}: radio-side {src} imports {a.module}")
        if a.module != src:
            for name in a.names:
                if _is_private(name):
                    out.append(f"{a.path}:{a.line}: {src} imports private {a.module}.{name}")
        parent = a.module.rsplit(".", 1)[0]
        if (_is_private(a.module.split(".")[-1]) and a.module != src
                and not (src == parent or src.startswith(parent + "."))):  # a package's own
            out.append(f"{a.path}:{a.line}: {src} imports private module {a.module}")
    return out


def same_floor_cycles(arrows: list[Arrow]) -> list[str]:
    """Pairs of different packages on one floor that import each other."""
    edges = set()
    for a in arrows:
        p, q = module_name(a.path).split(".")[0], a.module.split(".")[0]
        if p != q and p in FLOORS and q in FLOORS and FLOORS[p] == FLOORS[q]:
            edges.add((p, q))
    return sorted(f"{p} <-> {q}" for p, q in edges if (q, p) in edges and p < q)


def module_cycles(arrows: list[Arrow], modules: set[str]) -> list[list[str]]:
    """Groups of project modules that import each other in a circle (strongly connected
    components of the module graph; imports under ``TYPE_CHECKING`` do not count)."""
    graph: dict[str, set[str]] = {}
    for a in arrows:
        if a.typing_only:
            continue
        src = module_name(a.path)
        for target in [a.module] + [f"{a.module}.{n}" for n in a.names]:
            if target in modules and target != src:
                graph.setdefault(src, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    return sorted(cycles)


#: module cycles of gsc_semantic older than issue #14 (a new one anywhere fails)
KNOWN_CYCLES = [["gsc_semantic.photo_receiver", "gsc_semantic.prior_student"],
                ["gsc_semantic.scenarios.meeting", "gsc_semantic.scenarios.meeting_budget"]]


def project_files() -> list[tuple[str, bool]]:
    """(repository-relative path, direction checked) of every project ``.py`` file."""
    files = []
    for top in list(FLOORS) + list(PRIVATE_ONLY):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
            for f in filenames:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, f), ROOT).replace(os.sep, "/")
                    files.append((rel, top in FLOORS))
    return sorted(files)


def all_arrows() -> tuple[list[Arrow], list[Arrow]]:
    """(arrows of the floored packages, arrows of examples/scripts)."""
    floored, others = [], []
    for rel, checked in project_files():
        with open(os.path.join(ROOT, rel), encoding="utf-8") as fh:
            (floored if checked else others).extend(parse_arrows(fh.read(), rel))
    return floored, others


def test_every_floor_has_modules():
    files = {rel.split("/")[0] for rel, _ in project_files()}
    assert set(FLOORS) <= files


def test_imports_run_bottom_to_top():
    floored, _ = all_arrows()
    assert violations(floored) == []


def test_no_same_floor_cycle():
    floored, _ = all_arrows()
    assert same_floor_cycles(floored) == []


def test_no_module_import_cycles():
    floored, _ = all_arrows()
    modules = {module_name(rel) for rel, checked in project_files() if checked}
    assert module_cycles(floored, modules) == KNOWN_CYCLES


def test_checker_finds_module_cycles():
    arrows = (parse_arrows("from .loopback_mimo import run\n", "gsc_stream/loopback.py")
              + parse_arrows("from .loopback import attribute_losses\n",
                             "gsc_stream/loopback_mimo.py")
              + parse_arrows("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from .loopback import X\n", "gsc_stream/radio_link.py"))
    modules = {"gsc_stream.loopback", "gsc_stream.loopback_mimo", "gsc_stream.radio_link"}
    assert module_cycles(arrows, modules) == [["gsc_stream.loopback",
                                               "gsc_stream.loopback_mimo"]]


def test_no_private_imports_in_examples_and_scripts():
    _, others = all_arrows()
    assert violations(others, check_direction=False) == []


# -- the checker itself must be able to fail -------------------------------------------------

@pytest.mark.parametrize("path, source, expect", [
    ("gsc_phy/x.py", "from gsc_stream.loopback import run_loopback\n", "floor 4"),
    ("gsc_phy/x.py", "import hardware.cli\n", "gsc_phy must not import hardware"),
    ("gsc_phy/x.py", "from flowgraphs.gsc_ofdm import grid\n", "must not import flowgraphs"),
    ("hardware/x.py", "def f():\n    from gsc_phy.config import LinkConfig\n", "floor 3"),
    ("bridge/x.py", "from hardware import profiles\n", "floor 2"),
    ("flowgraphs/x.py", "import torch\n", "radio-side"),
    ("gsc_phy/sweep/x.py", "REG = {'a': 'gsc_semantic.send:send_command'}\n", "floor 5"),
    ("gsc_stream/x.py", "import importlib\nimportlib.import_module('gsc_cli.main')\n",
     "floor 6"),
    ("gsc_stream/x.py", "from .processes import _tail\n", "private gsc_stream.processes._tail"),
    ("gsc_phy/sweep/x.py", "from ..config import _k\n", "private gsc_phy.config._k"),
    ("tests/test_x.py", "from gsc_stream.radio_link import _codec\n", "private"),
    ("gsc_cli/x.py", "from gsc_semantic.data._common import f\n", "private module"),
])
def test_checker_flags_wrong_way_imports(path, source, expect):
    found = violations(parse_arrows(source, path), check_direction=not path.startswith("tests"))
    assert len(found) == 1 and expect in found[0], found


@pytest.mark.parametrize("path, source", [
    ("gsc_semantic/x.py", "from gsc_stream.loopback import run_loopback\n"),
    ("gsc_stream/x.py", "from bridge.wire import Frame\nfrom .processes import tail\n"),
    ("gsc_cli/x.py", "from gsc_semantic import send\n"),
    ("hardware/x.py", "from flowgraphs.gsc_ofdm.grid import GridLayout\n"),
    ("gsc_phy/x.py", "from .config import LinkConfig\nfrom . import __version__\n"),
    ("gsc_semantic/data/x.py", "from ._common import f\n"),  # a package's private module
])
def test_checker_accepts_right_way_imports(path, source):
    assert violations(parse_arrows(source, path)) == []


def test_checker_finds_same_floor_cycles():
    arrows = (parse_arrows("import hardware.impairments\n", "flowgraphs/device/b.py")
              + parse_arrows("from flowgraphs.gsc_ofdm import rx\n", "hardware/e.py"))
    assert same_floor_cycles(arrows) == ["flowgraphs <-> hardware"]
