"""Scan the code base for unsafe patterns: unpickling, unsafe torch/numpy loads, wildcard binds.

Checkpoints load through safetensors or ``torch.load(..., weights_only=True)``; nothing is
ever unpickled from the wire or from disk; endpoints bind 127.0.0.1 unless told otherwise.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".git", "build", "gsc-demo", "runs", "node_modules"}

PATTERNS = {
    "pickle import": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", re.M),
    "pickle call": re.compile(r"\bpickle\.loads?\("),
    # the keyword must be on the same line as the call
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^\n]*weights_only=True)"),
    "numpy allow_pickle": re.compile(r"allow_pickle\s*=\s*True"),
    "wildcard bind": re.compile(r"""bind\(\s*f?["']tcp://(\*|0\.0\.0\.0)"""),
}


def _python_files():
    for path in ROOT.rglob("*.py"):
        if SKIP_DIRS.intersection(path.relative_to(ROOT).parts) or path.name == "test_code_scan.py":
            continue
        yield path


def test_no_unsafe_patterns():
    hits = []
    for path in _python_files():
        text = path.read_text(errors="replace")
        for what, pattern in PATTERNS.items():
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                hits.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not hits, "\n".join(hits)


def test_scanner_catches_what_it_should(tmp_path):
    bad = 'import pickle\nx = torch.load("f.pt")\nsock.bind("tcp://*:5555")\n'
    found = {what for what, p in PATTERNS.items() if p.search(bad)}
    assert found == {"pickle import", "torch.load without weights_only=True", "wildcard bind"}
    assert not PATTERNS["torch.load without weights_only=True"].search(
        'torch.load(p, map_location="cpu", weights_only=True)')
