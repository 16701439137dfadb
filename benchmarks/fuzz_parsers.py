"""Fuzz every parser that reads outside input; prints JSON (crashes, hangs, speed per parser).

Each target gets ``--inputs`` inputs (default 100,000) made by mutating valid seeds (bit
flips, interesting byte values, truncation, insertion, deletion, duplication, splicing two
seeds, wire header fields set to extremes with the CRC re-signed, structured edits of
JSON/YAML documents, plus wholly random bytes). An input is *answered* (a value) or
*rejected* with the parser's own error type; anything else is a **crash**. Every input runs
under a time bound (``--bound-s``, default 1 s of CPU time): a ``SIGPROF`` timer
interrupts Python-level loops, and a wall-clock watchdog in the parent process kills and
restarts a worker stuck (in C code, or blocked) for the bound plus 30 s; either counts as a
**hang**. ``max_ms`` is the slowest input in wall time (inflated on a loaded host),
``max_cpu_ms`` in CPU time. Inputs are reproducible from ``--seed`` and their index.

=============  ==============================================  ==================
target         parser                                          clean rejection
=============  ==============================================  ==================
wire           ``bridge.wire.decode``                          ``WireError``
pmt            ``bridge.pmt.deserialize``                      ``PmtError``
pmt_tagged     ``bridge.pmt.parse_tagged``                     ``PmtError``
sigmf          ``hardware.sigmf_lite.read_recording`` + reads  ``RecordingError``
sigmf_io       ``hardware.sigmf_io.read_recording`` (ML side)  ``RecordingError``
profile        ``hardware.profiles.parse_profile`` (mappings)  ``ProfileError``
profile_yaml   ``hardware.profiles.load_profile`` (YAML text)  ``ProfileError``
config_text    ``gsc_phy.config.parse_snr_range/mimo/rate/     ``ConfigError``
               position``
link_config    ``gsc_phy.config.LinkConfig(**fields)``         ``ConfigError``
=============  ==============================================  ==================

With ``--atheris`` (when ``import atheris`` works, e.g. ``PYTHONPATH`` pointing at a
``pip install --target`` folder) each byte-level target also runs under atheris/libFuzzer
(coverage-guided) for ``--atheris-runs`` runs with ``-timeout`` = the bound.

Run: ``python benchmarks/fuzz_parsers.py [--inputs 100000] [--targets wire,pmt]`` (either
interpreter; ``sigmf_io`` needs the ``sigmf`` package and is skipped without it).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing as mp
import os
import platform
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x30, 0x22, 0x5B, 0x7B)
_JSON_EDGE = [None, True, False, 0, -1, 1, 2**63, -(2**63), 2**64, 10**400, 1e308, -1e308,
              0.5, "", "x" * 300, "cf32_le", "ci16_be", "rf32_le", [], {}, [1, 2], {"a": 1}]
_YAML_EDGE = _JSON_EDGE + [math.nan, math.inf, -math.inf, 10**5000, "1e999", "tcp://*:1",
                           "ipc:///tmp/x", b"\x00".decode(), {1: 2}, {None: 1}]


class _Hang(BaseException):
    """Raised by the SIGPROF timer inside an input that ran past its CPU-time bound."""


# ------------------------------------------------------------------ mutation


def mutate_bytes(rng: random.Random, data: bytes, seeds: list[bytes], ops: int = 4) -> bytes:
    """1..``ops`` random byte-level edits of ``data`` (5 % wholly random bytes instead).

    >>> len(mutate_bytes(random.Random(0), b"abc", [b"xyz"])) >= 0
    True
    """
    if rng.random() < 0.05:
        return rng.randbytes(rng.randrange(0, 256))
    buf = bytearray(data)
    for _ in range(rng.randint(1, ops)):
        op = rng.randrange(7)
        n = len(buf)
        if op == 0 and n:  # bit flips
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.choice(_INTERESTING)
        elif op == 2:
            del buf[rng.randrange(n + 1):]
        elif op == 3:
            i = rng.randrange(n + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 4 and n:
            i = rng.randrange(n)
            del buf[i:i + rng.randint(1, 32)]
        elif op == 5 and n:
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            k = rng.randrange(n + 1)
            buf[k:k] = buf[i:j]
        elif op == 6:
            other = rng.choice(seeds)
            cut, cut2 = rng.randrange(len(buf) + 1), rng.randrange(len(other) + 1)
            buf = buf[:cut] + other[cut2:]
    return bytes(buf)


def _edit_tree(rng: random.Random, doc: Any, values: list) -> Any:
    """Replace, add or drop one node of a JSON/YAML-like tree (in place; returns the root)."""
    node = doc
    for _ in range(rng.randint(0, 3)):
        children = list(node.values()) if isinstance(node, dict) else (
            node if isinstance(node, list) else [])
        children = [c for c in children if isinstance(c, (dict, list))]
        if not children:
            break
        node = rng.choice(children)
    value = copy.deepcopy(rng.choice(values))
    if isinstance(node, dict):
        keys = list(node)
        op = rng.randrange(3)
        if op == 0 and keys:
            node[rng.choice(keys)] = value
        elif op == 1 and keys:
            del node[rng.choice(keys)]
        else:
            node[rng.choice(keys + [rng.choice(["x", 1, None])]) if keys and rng.random() < 0.3
                 else rng.choice(["core:sample_count", "core:sha512", "extra", 7])] = value
    elif isinstance(node, list):
        if node and rng.random() < 0.5:
            node[rng.randrange(len(node))] = value
        else:
            node.append(value)
    else:
        return value
    return doc


# ------------------------------------------------------------------ targets


class Target:
    """One parser under test: seeds, how to make input ``i``, how to run it, its error."""

    def __init__(self, name: str, parse: Callable[[Any], Any], make: Callable[[int], Any],
                 error: type[BaseException]):
        self.name, self.parse, self.make, self.error = name, parse, make, error


def _rng(seed: int, name: str, i: int) -> random.Random:
    return random.Random(zlib.crc32(name.encode()) * 1_000_003 + seed * 7_919 + i)


def _wire_target(seed: int) -> Target:
    from bridge import wire

    frames = [wire.Frame(wire.PayloadKind.SYMBOLS, np.arange(8, dtype=np.complex64), seq=3),
              wire.Frame(wire.PayloadKind.LLRS, np.zeros((2, 3), np.float32), layer=2),
              wire.Frame(wire.PayloadKind.SEMANTIC_BITS, np.array([1, 0, 1], np.uint8),
                         packed_bits=True),
              wire.Frame(wire.PayloadKind.SEMANTIC_BITS, np.ones((2, 5), bool),
                         packed_bits=True),
              wire.Frame(wire.PayloadKind.CHANNEL, np.zeros((1, 2, 2, 1), np.complex128)),
              wire.Frame(wire.PayloadKind.IQ, np.zeros(0, np.int16)),
              wire.Frame(wire.PayloadKind.TRANSPORT_BLOCK, np.array([True, False])),
              wire.Frame.from_json({"cmd": "start", "n": 3}),
              wire.Frame(wire.PayloadKind.ACK, b"")]
    frames += [wire.Frame(wire.PayloadKind.IQ, np.arange(4).astype(dt))
               for code, dt in wire._WIRE_DTYPES.items() if code != wire.DType.BYTES]
    for f in frames:
        f.timestamp_ns = 1_700_000_000_000_000_000  # fixed: inputs reproducible run to run
    seeds = [wire.encode(f, payload_crc=pc) for f in frames for pc in (True, False)]

    def make(i: int) -> bytes:
        rng = _rng(seed, "wire", i)
        buf = bytearray(mutate_bytes(rng, rng.choice(seeds), seeds))
        if len(buf) >= 40 and rng.random() < 0.3:  # one header field to an extreme
            off, width = rng.choice([(9, 1), (10, 1), (11, 1), (12, 2), (20, 4), (40, 8),
                                     (48, 8)])
            if off + width <= len(buf):
                buf[off:off + width] = rng.choice([0, 1, 2**(8 * width) - 1]).to_bytes(
                    width, "little")
        if len(buf) >= 8 and rng.random() < 0.6:  # re-sign: reach the checks behind the CRC
            end = len(buf)
            if len(buf) >= 14 and buf[12] & wire.FLAG_HEADER_CRC:  # the range the flag says
                end = 40 + 8 * buf[11]
            buf[4:8] = struct.pack("<I", zlib.crc32(bytes(buf[8:end])))
        return bytes(buf)

    return Target("wire", wire.decode, make, wire.WireError)


def _pmt_seeds() -> list[Any]:
    from bridge import pmt

    return [None, True, 7, -(2**40), pmt.UInt64(2**64 - 1), 2.5, 1 - 2j, "packet_len",
            [1, "a", None], (1.0, 2), {"freq": 2.4e9, "len": 3, "tags": [1, 2]},
            pmt.Pair(1, pmt.Pair(2, None)), pmt.make_pdu({"k": 1}, np.arange(5, dtype=np.uint8)),
            *[np.arange(3).astype(dt) for dt in ("u1", "i1", "u2", "i2", "u4", "i4", "u8",
                                                  "i8", "f4", "f8", "c8", "c16")],
            {"nested": {"d": [{"x": (1, 2)}]}}]


def _pmt_target(seed: int) -> Target:
    from bridge import pmt

    seeds = [pmt.serialize(v) for v in _pmt_seeds()]

    def make(i: int) -> bytes:
        rng = _rng(seed, "pmt", i)
        return mutate_bytes(rng, rng.choice(seeds), seeds)

    return Target("pmt", pmt.deserialize, make, pmt.PmtError)


def _tagged_target(seed: int) -> Target:
    from bridge import pmt

    values = _pmt_seeds()
    seeds = [pmt.build_tagged(100, [pmt.Tag(100 + j, "packet_len", v) for j, v in
                                    enumerate(values[k:k + 3])], np.zeros(4, np.complex64))
             for k in range(0, len(values), 3)]

    def make(i: int) -> bytes:
        rng = _rng(seed, "pmt_tagged", i)
        return mutate_bytes(rng, rng.choice(seeds), seeds)

    def parse(data: bytes) -> Any:
        msg = pmt.parse_tagged(data)
        msg.items("<c8") if len(msg.payload) % 8 == 0 else None
        return msg

    return Target("pmt_tagged", parse, make, pmt.PmtError)


def _sigmf_target(seed: int, workdir: str, use_io: bool) -> Target:
    from hardware import sigmf_lite

    reader: Callable[[str], Any] = sigmf_lite.read_recording
    if use_io:
        import sigmf  # noqa: F401 - the ML side's reader needs the sigmf package

        from hardware import sigmf_io

        reader = sigmf_io.read_recording
    seeds = []
    for k, dt in enumerate(("cf32_le", "ci16_le", "cu8", "ci32_be")):
        base = os.path.join(workdir, f"seed{k}")
        w = sigmf_lite.SigMFWriter(base, sample_rate_hz=1e6, center_freq_hz=2.4e9, datatype=dt,
                                   datetime_utc="2026-01-01T00:00:00.000000Z", overwrite=True)
        w.write((np.arange(32) * (1 + 1j) / 40).astype(np.complex64))
        w.annotate(2, 8, label="gsc-frame")
        meta_path = w.close()
        with open(meta_path, "rb") as fh:
            meta = fh.read()
        with open(base + ".sigmf-data", "rb") as fh:
            seeds.append((meta, fh.read()))
    metas = [m for m, _ in seeds]
    datas = [d for _, d in seeds]
    base = os.path.join(workdir, "input")

    def make(i: int) -> tuple[bytes, bytes | None]:
        rng = _rng(seed, "sigmf", i)
        meta, data = rng.choice(seeds)
        r = rng.random()
        if r < 0.35:
            meta = mutate_bytes(rng, meta, metas)
        elif r < 0.55:
            data = mutate_bytes(rng, data, datas)
        elif r < 0.95:
            doc = json.loads(meta)
            for _ in range(rng.randint(1, 3)):
                doc = _edit_tree(rng, doc, _JSON_EDGE)
            meta = json.dumps(doc).encode()
        else:
            data = None
        return meta, data

    def parse(inp: tuple[bytes, bytes | None]) -> Any:
        meta, data = inp
        with open(base + ".sigmf-meta", "wb") as fh:
            fh.write(meta)
        if data is None:
            if os.path.exists(base + ".sigmf-data"):
                os.unlink(base + ".sigmf-data")
        else:
            with open(base + ".sigmf-data", "wb") as fh:
                fh.write(data)
        rec = reader(base)
        rec.samples(0)
        rec.samples(rec.num_samples // 2, 3)
        return rec

    return Target("sigmf_io" if use_io else "sigmf", parse, make, sigmf_lite.RecordingError)


def _profile_targets(seed: int, workdir: str) -> list[Target]:
    import yaml

    from hardware import profiles

    texts, docs = [], []
    for name in profiles.list_profiles():
        with open(profiles.profile_path(name), "rb") as fh:
            texts.append(fh.read())
        docs.append(yaml.safe_load(texts[-1]))

    def make_doc(i: int) -> Any:
        rng = _rng(seed, "profile", i)
        doc = copy.deepcopy(rng.choice(docs))
        for _ in range(rng.randint(1, 3)):
            doc = _edit_tree(rng, doc, _YAML_EDGE)
        return doc

    path = os.path.join(workdir, "input.yaml")

    def make_text(i: int) -> bytes:
        rng = _rng(seed, "profile_yaml", i)
        return mutate_bytes(rng, rng.choice(texts), texts)

    def load(text: bytes) -> Any:
        with open(path, "wb") as fh:
            fh.write(text)
        return profiles.load_profile(path)

    return [Target("profile", lambda d: profiles.parse_profile(d, "fuzz.yaml"), make_doc,
                   profiles.ProfileError),
            Target("profile_yaml", load, make_text, profiles.ProfileError)]


def _config_targets(seed: int) -> list[Target]:
    import dataclasses

    from gsc_phy import config

    texts = [s.encode() for s in ("0:20:5", "-5:20:2.5", "1,2,3", "30", "2x2", "16X4", "1/2",
                                  "0.5", "0,0,5", "10,5,5", "-1:2:0.5", "1e2:1e3:1")]

    def make_text(i: int) -> str:
        rng = _rng(seed, "config_text", i)
        return mutate_bytes(rng, rng.choice(texts), texts).decode("latin-1")

    def parse_text(text: str) -> Any:
        """All four parsers on one text; rejected (ConfigError) when all four reject it."""
        out, last = [], None
        for fn in (config.parse_snr_range, config.parse_mimo, config.parse_rate,
                   lambda t: config.parse_position(t, "--tx-pos")):
            try:
                out.append(fn(text))
            except config.ConfigError as e:
                last = e
        if not out:
            raise last
        return out

    fields = dataclasses.fields(config.LinkConfig)
    choices = [*config.CHANNELS, *config.MODULATIONS, *config.PRECODERS, *config.ESTIMATORS,
               *config.DETECTORS, *config.RIS_PHASES, "esno", "ebno", "", "cpu"]
    ints = [0, 1, 2, 3, 8, 16, 17, 24, 25, 1024, 2048, 8448, 8449, 65536, -1, 2**70]
    floats = [0.0, -1.0, 1e-9, 3.5e9, 30e3, math.nan, math.inf, -math.inf, 1e308]

    def value(rng: random.Random, f: dataclasses.Field) -> Any:
        t = str(f.type)
        if t.startswith("int"):
            return rng.choice(ints + ([None] if "None" in t else []))
        if t == "float":
            return rng.choice(floats)
        if t == "bool":
            return rng.random() < 0.5
        if t.startswith("str"):
            return rng.choice(choices)
        if t.startswith("tuple[float"):
            return None if rng.random() < 0.2 else tuple(rng.choice(floats) for _ in range(3))
        if t.startswith("tuple[int"):
            return tuple(rng.choice(ints) for _ in range(rng.randint(0, 3)))
        return [rng.choice(floats + [0.0, 10.0, -100.0]) for _ in range(rng.randint(0, 3))]

    def make_cfg(i: int) -> dict:
        rng = _rng(seed, "link_config", i)
        return {f.name: value(rng, f) for f in rng.sample(fields, rng.randint(1, 6))}

    return [Target("config_text", parse_text, make_text, config.ConfigError),
            Target("link_config", lambda kw: config.LinkConfig(**kw), make_cfg,
                   config.ConfigError)]


def build_targets(names: list[str], seed: int, workdir: str) -> dict[str, Target]:
    """The targets named (unknown or unavailable ones raise ``KeyError``/``ImportError``)."""
    out: dict[str, Target] = {}
    for name in names:
        if name == "wire":
            out[name] = _wire_target(seed)
        elif name == "pmt":
            out[name] = _pmt_target(seed)
        elif name == "pmt_tagged":
            out[name] = _tagged_target(seed)
        elif name in ("sigmf", "sigmf_io"):
            out[name] = _sigmf_target(seed, workdir, name == "sigmf_io")
        elif name in ("profile", "profile_yaml"):
            out[name] = {t.name: t for t in _profile_targets(seed, workdir)}[name]
        elif name in ("config_text", "link_config"):
            out[name] = {t.name: t for t in _config_targets(seed)}[name]
        else:
            raise KeyError(name)
    return out


ALL_TARGETS = ["wire", "pmt", "pmt_tagged", "sigmf", "sigmf_io", "profile", "profile_yaml",
               "config_text", "link_config"]


# ------------------------------------------------------------------ running

#: Seconds without progress, beyond the bound, before the watchdog kills a worker (generous:
#: on a loaded machine a process can wait seconds for a CPU).
_WATCHDOG_GRACE_S = 30.0

# shared counters of one worker process
_DONE, _ANSWERED, _REJECTED, _CRASHES, _HANGS, _MAX_US, _MAX_CPU_US, _CURRENT = range(8)


def _safe_repr(x: Any) -> str:
    try:
        return repr(x)[:300]
    except Exception:  # e.g. an integer too long for repr
        return f"<unrepresentable {type(x).__name__}>"


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang()


def _worker(name: str, seed: int, start: int, stop: int, bound_s: float, counters,
            crash_q) -> None:
    """Run inputs ``start..stop-1`` of one target, updating the shared counters.

    The bound is on CPU time (``ITIMER_PROF``): a parser that loops burns CPU and is
    interrupted, while an input merely waiting for a CPU on a loaded host is not. Inputs that
    block without burning CPU are left to the parent's wall-clock watchdog.
    """
    import warnings

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        target = build_targets([name], seed, d)[name]
        signal.signal(signal.SIGPROF, _alarm)
        perf, cpu = time.perf_counter, time.process_time
        for i in range(start, stop):
            counters[_CURRENT] = i
            inp = target.make(i)
            t0, c0 = perf(), cpu()
            outcome, detail = _ANSWERED, ""
            try:
                signal.setitimer(signal.ITIMER_PROF, bound_s)
                try:
                    target.parse(inp)
                except target.error:
                    outcome = _REJECTED
                except _Hang:
                    outcome, detail = _HANGS, f"over {bound_s} s of CPU"
                except Exception as e:  # anything else is a crash: where and what
                    last = traceback.extract_tb(e.__traceback__)[-1]
                    where = f"{os.path.relpath(last.filename, ROOT)}:{last.lineno}"
                    outcome, detail = _CRASHES, f"{type(e).__name__} at {where}: {str(e)[:200]}"
                finally:
                    signal.setitimer(signal.ITIMER_PROF, 0)
            except _Hang:  # the timer fired just as the parse finished: keep its outcome
                pass
            counters[outcome] += 1
            if outcome in (_HANGS, _CRASHES):
                crash_q.put((i, detail, _safe_repr(inp)))
            us = int((perf() - t0) * 1e6)
            if us > counters[_MAX_US]:
                counters[_MAX_US] = us
            cpu_us = int((cpu() - c0) * 1e6)
            if cpu_us > counters[_MAX_CPU_US]:
                counters[_MAX_CPU_US] = cpu_us
            counters[_DONE] += 1


def fuzz_target(name: str, inputs: int, seed: int, bound_s: float) -> dict:
    """Fuzz one target in a worker process under a watchdog; its JSON record."""
    mpc = mp.get_context("spawn")
    counters = mpc.Array("q", 8, lock=False)
    crash_q = mpc.Queue()
    examples: list[dict] = []
    watchdog_kills = 0
    start = 0
    t0 = time.perf_counter()
    while start < inputs:
        proc = mpc.Process(target=_worker, args=(name, seed, start, inputs, bound_s, counters,
                                                 crash_q))
        proc.start()
        killed = False
        last, last_change = -1, time.monotonic()
        while proc.is_alive():
            proc.join(0.5)
            cur = counters[_DONE]
            if cur != last:
                last, last_change = cur, time.monotonic()
            elif time.monotonic() - last_change > bound_s + _WATCHDOG_GRACE_S:  # stuck in C
                proc.kill()
                proc.join()
                killed = True
                watchdog_kills += 1
                counters[_HANGS] += 1
                examples.append({"input": int(counters[_CURRENT]),
                                 "error": "hang: killed by the watchdog"})
        if proc.exitcode == 0:
            break
        if not killed:  # the worker died under an input (segfault, os._exit, ...)
            counters[_CRASHES] += 1
            examples.append({"input": int(counters[_CURRENT]),
                             "error": f"worker died (exit code {proc.exitcode})"})
        start = int(counters[_CURRENT]) + 1  # skip the input it died on (counted above)
        counters[_DONE] = start
    elapsed = time.perf_counter() - t0
    while not crash_q.empty() and len(examples) < 10:
        i, detail, inp = crash_q.get()
        examples.append({"input": i, "error": detail, "repr": inp})
    return {
        "inputs": int(counters[_DONE]),
        "answered": int(counters[_ANSWERED]),
        "rejected": int(counters[_REJECTED]),
        "crashes": int(counters[_CRASHES]),
        "hangs": int(counters[_HANGS]),
        "watchdog_kills": watchdog_kills,
        "max_ms": counters[_MAX_US] / 1000,
        "max_cpu_ms": counters[_MAX_CPU_US] / 1000,
        "inputs_per_s": counters[_DONE] / elapsed,
        "elapsed_s": elapsed,
        "examples": examples,
    }


# ------------------------------------------------------------------ atheris

_ATHERIS_TARGETS = ("wire", "pmt", "pmt_tagged", "profile_yaml", "config_text")


def _atheris_main(name: str, runs: int, bound_s: float, seed: int) -> None:
    """Entry point of the atheris child: coverage-guided fuzzing of one byte-level target."""
    import atheris

    with atheris.instrument_imports():
        import bridge.pmt  # noqa: F401
        import bridge.wire  # noqa: F401
        import gsc_phy.config  # noqa: F401
        import hardware.profiles  # noqa: F401
    workdir = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    target = build_targets([name], seed, workdir)[name]
    if name == "config_text":
        convert: Callable[[bytes], Any] = lambda b: b.decode("latin-1")  # noqa: E731
    else:
        convert = bytes

    def one(data: bytes) -> None:
        try:
            target.parse(convert(data))
        except target.error:
            pass

    corpus = os.path.join(workdir, "corpus")
    os.makedirs(corpus)
    for i in range(50):
        inp = target.make(i)
        with open(os.path.join(corpus, f"seed{i}"), "wb") as fh:
            fh.write(inp.encode("latin-1") if isinstance(inp, str) else inp)
    atheris.Setup([sys.argv[0], f"-runs={runs}", f"-timeout={max(1, int(bound_s))}",
                   f"-seed={seed + 1}", "-print_final_stats=1", corpus], one)
    atheris.Fuzz()


def run_atheris(name: str, runs: int, bound_s: float, seed: int) -> dict:
    """Run one atheris child; parse libFuzzer's final statistics."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--atheris-child", name,
                          "--atheris-runs", str(runs), "--bound-s", str(bound_s),
                          "--seed", str(seed)], capture_output=True, text=True, timeout=3600)
    stats = {}
    for line in out.stderr.splitlines():
        if line.startswith("stat::"):
            k, _, v = line[6:].partition(":")
            stats[k.strip()] = int(v.strip()) if v.strip().isdigit() else v.strip()
    crashed = out.returncode != 0
    tail = [ln for ln in out.stderr.splitlines() if "Error" in ln or "Traceback" in ln][:5]
    return {"runs": stats.get("number_of_executed_units"), "exit_code": out.returncode,
            "crashes": int(crashed and "timeout" not in out.stderr.lower()),
            "hangs": int(crashed and "timeout" in out.stderr.lower()),
            "elapsed_s": time.perf_counter() - t0,
            "corpus_units_added": stats.get("new_units_added"), "errors": tail}


def main(argv: list[str] | None = None) -> dict:
    """Fuzz the chosen targets; print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="inputs per target")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS))
    ap.add_argument("--bound-s", type=float, default=1.0, help="time bound per input")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atheris", action="store_true", help="also run atheris where it imports")
    ap.add_argument("--atheris-runs", type=int, default=100_000)
    ap.add_argument("--atheris-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.atheris_child:
        _atheris_main(args.atheris_child, args.atheris_runs, args.bound_s, args.seed)
        return {}
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ALL_TARGETS))
    if unknown or args.inputs < 1 or args.bound_s <= 0:
        ap.error(f"unknown targets {unknown} (known: {', '.join(ALL_TARGETS)})" if unknown
                 else "--inputs >= 1 and --bound-s > 0")
    results: dict[str, Any] = {}
    for name in names:
        try:
            with tempfile.TemporaryDirectory() as d:
                build_targets([name], args.seed, d)
        except ImportError as e:
            results[name] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        results[name] = fuzz_target(name, args.inputs, args.seed, args.bound_s)
        print(f"{name}: {json.dumps({k: v for k, v in results[name].items() if k != 'examples'})}",
              file=sys.stderr, flush=True)
    out: dict[str, Any] = {
        "benchmark": "fuzz_parsers",
        "bound_s": args.bound_s,
        "seed": args.seed,
        "targets": results,
        "total": {k: sum(r.get(k, 0) for r in results.values()) for k in
                  ("inputs", "crashes", "hangs")},
    }
    if args.atheris:
        try:
            import atheris  # noqa: F401
        except ImportError as e:
            out["atheris"] = {"skipped": f"atheris does not import here: {e}"}
        else:
            out["atheris"] = {n: run_atheris(n, args.atheris_runs, args.bound_s, args.seed)
                              for n in names if n in _ATHERIS_TARGETS}
    out["versions"] = {"python": platform.python_version(), "numpy": np.__version__}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
