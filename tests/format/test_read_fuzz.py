"""Fuzzing the Python reader of .crisp files (issue 14) with hypothesis.

``decode_model`` on mutants of valid files must return a model or raise a
:class:`~crisp_edge.errors.CrispError` (FormatError, ChecksumError, VersionError, ...), never
another exception type and never hang. The mutants: byte flips, byte and 32-bit field writes
(interesting values: 0, 1, powers of two, the int limits, NaN/inf bit patterns), inserted and
deleted ranges and truncations, each aimed at the whole file or at one section, then most of
them with every CRC recomputed (header, table, sections), so the structural checks behind the
checksums are reached, as `runtime/tests/fuzz_loader.c`'s mutator does for the C loader.

The seeds: the torch-made fixtures of runtime/tests/data (float32, int8, hybrid-sparse) and the
writer's models of test_format.py (labels, provenance, PREP, SALY, int8 encodings).

`pytest` runs a bounded, derandomised search (CRISP_READ_FUZZ_EXAMPLES, default 3000: a few
seconds); `make fuzz-long` runs the ``fuzz_long`` test below with a random seed and
CRISP_READ_FUZZ_LONG_EXAMPLES examples, printing the count. Inputs that once failed live in
tests/format/fuzz_regressions/ and are decoded on every run.
"""

from __future__ import annotations

import os
import signal
import struct
import time
import zlib
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_format import _prep_model, _quantized_model, sample_model  # noqa: E402

from crisp_edge import format as fmt  # noqa: E402
from crisp_edge.errors import CrispError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
HANG_SECONDS = 20  # one decode; the slowest seed takes milliseconds


def _seeds() -> list[bytes]:
    files = sorted((REPO / "runtime" / "tests" / "data").glob("*.crisp"))
    seeds = [f.read_bytes() for f in files]
    prep = fmt.Preprocess(8, 8, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                          fmt.RESIZE_SHORTER_SIDE, 10, fmt.CHANNELS_BGR)
    seeds += [fmt.encode_model(sample_model()), fmt.encode_model(_quantized_model()),
              fmt.encode_model(_prep_model(prep))]
    return seeds


SEEDS = _seeds()
INTERESTING = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024,
               4095, 4096, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
               0xFFFFFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x3F800000, 0xBF800000, 1 << 28,
               (1 << 28) + 1]


def fix_crcs(f: bytearray, fix_size: bool) -> None:
    """Every CRC the container has, wherever the (mutated) table says, within bounds; with
    fix_size the header's file_size too (so a cut or an insertion gets past it)."""
    if len(f) < 64:
        return
    if fix_size:
        struct.pack_into("<Q", f, 16, len(f))
    table, count, stride = struct.unpack_from("<QII", f, 24)
    if count <= 64 and 32 <= stride <= 4096 and table <= len(f) and \
            count * stride <= len(f) - table:
        for i in range(count):
            e = table + i * stride
            off, size = struct.unpack_from("<QQ", f, e + 8)
            if off <= len(f) and size <= len(f) - off:
                struct.pack_into("<I", f, e + 24, zlib.crc32(f[off:off + size]))
        struct.pack_into("<I", f, 44, zlib.crc32(f[table:table + count * stride]))
    struct.pack_into("<I", f, 60, zlib.crc32(f[:60]))


def _sections(f: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each section of the seed (unmutated), for aimed mutations."""
    count = struct.unpack_from("<I", f, 32)[0]
    return [struct.unpack_from("<QQ", f, 64 + 32 * i + 8) for i in range(count)]


_edit = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
    st.tuples(st.just("u32"), st.floats(0, 1, exclude_max=True),
              st.one_of(st.sampled_from(INTERESTING), st.integers(0, 0xFFFFFFFF))),
    st.tuples(st.just("add"), st.floats(0, 1, exclude_max=True), st.integers(-3, 3)),
    st.tuples(st.just("cut"), st.floats(0, 1, exclude_max=True), st.integers(1, 64)),
    st.tuples(st.just("insert"), st.floats(0, 1, exclude_max=True),
              st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
)


@st.composite
def mutants(draw) -> bytes:
    seed = draw(st.sampled_from(range(len(SEEDS))))
    f = bytearray(SEEDS[seed])
    regions = [(0, len(f)), (0, 64)] + _sections(SEEDS[seed])
    for kind, where, arg in draw(st.lists(_edit, min_size=1, max_size=6)):
        start, size = draw(st.sampled_from(regions))
        if not f:
            break
        pos = min(start + int(where * size), len(f) - 1)
        if kind == "flip":
            f[pos] ^= 1 << arg
        elif kind == "byte":
            f[pos] = arg
        elif kind == "u32":
            pos -= pos % 4
            if pos + 4 <= len(f):
                struct.pack_into("<I", f, pos, arg)
        elif kind == "add":
            pos -= pos % 4
            if pos + 4 <= len(f):
                v = struct.unpack_from("<I", f, pos)[0]
                struct.pack_into("<I", f, pos, (v + arg) & 0xFFFFFFFF)
        elif kind == "cut":
            del f[pos:pos + arg]
        elif kind == "insert":
            f[pos:pos] = arg
        else:
            del f[int(where * len(f)):]
    if draw(st.integers(0, 7)) != 0:  # 1 in 8 keeps its broken checksums
        fix_crcs(f, draw(st.booleans()))
    return bytes(f)


class Hang(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise Hang(f"decode_model took more than {HANG_SECONDS} s")


COUNT = {"decoded": 0, "refused": 0}


def check_decode(data: bytes) -> None:
    """decode_model returns or raises a CrispError; anything else (or a hang) fails."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        fmt.decode_model(data)
        COUNT["decoded"] += 1
    except CrispError:
        COUNT["refused"] += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run(examples: int, derandomize: bool) -> None:
    @settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(mutants())
    def fuzz(data: bytes) -> None:
        check_decode(data)

    fuzz()


def test_seeds_decode() -> None:
    for data in SEEDS:
        fmt.decode_model(data)


def test_regressions() -> None:
    for path in sorted(REGRESSIONS.glob("*.crisp")):  # none yet: the reader has not failed
        check_decode(path.read_bytes())


def test_read_fuzz_bounded() -> None:
    _run(int(os.environ.get("CRISP_READ_FUZZ_EXAMPLES", "3000")), derandomize=True)


@pytest.mark.fuzz_long
def test_read_fuzz_long() -> None:
    examples = int(os.environ.get("CRISP_READ_FUZZ_LONG_EXAMPLES", "200000"))
    COUNT.update(decoded=0, refused=0)
    t0 = time.monotonic()
    _run(examples, derandomize=False)
    total = COUNT["decoded"] + COUNT["refused"]
    print(f"\nread_fuzz: {total} executions ({COUNT['decoded']} decoded, {COUNT['refused']} "
          f"refused with a CrispError), 0 crashes, {time.monotonic() - t0:.0f} s")
