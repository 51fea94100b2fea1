"""A fleet benchmark: every (host, board) of a fleet file benchmarked concurrently, each board
with its own power sensor when energy is asked for (:mod:`crisp_edge.measure.fieldbench` measures
one board, :mod:`crisp_edge.measure.fieldenergy` opens its sensor)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any, Sequence

from crisp_edge.deploy.boards import BoardProfile, load_board
from crisp_edge.deploy.build import BoardBuild, build_runtime
from crisp_edge.deploy.ssh import Remote
from crisp_edge.measure.fieldbench import FLEET_FORMAT, Log, bench_host
from crisp_edge.measure.fieldenergy import EnergyOptions, open_board_sensor


def _failure(host: str, board: str, error: Exception, log: Log) -> dict[str, Any]:
    """One board's failure entry. The exception type is kept: for an error crisp-edge did not
    expect (not a CrispError) the message alone rarely says what broke."""
    text = f"{type(error).__name__}: {error}"
    log(f"{host}: failed: {text}")
    return {"host": host, "board": board, "error": text}


def _build_each(boards: dict[str, BoardProfile], log: Log, toolchain: str | None = None
                ) -> tuple[dict[str, BoardBuild], dict[str, Exception]]:
    """The runtime built for each board, one board after the other (concurrent builds of one
    tree would collide), and the error of each board whose build failed: that board's hosts
    fail, the other boards are still measured."""
    builds: dict[str, BoardBuild] = {}
    errors: dict[str, Exception] = {}
    for name, board in boards.items():
        try:
            builds[name] = build_runtime(board, toolchain=toolchain, log=log)
        except Exception as e:  # not BaseException: Ctrl-C still stops the fleet
            errors[name] = e
    return builds, errors


def bench_fleet(entries: Sequence[tuple[str, str]], *, ssh_config: Path | None = None,
                jobs: int = 8, log: Log = lambda _: None, energy: EnergyOptions | None = None,
                toolchain: str | None = None, **kw: Any) -> dict[str, Any]:
    """Benchmark every (host, board) concurrently; a failing board, whatever the exception, is
    recorded as ``{"host", "board", "error"}`` and the others' results are still returned.
    Boards that need a build are built first, once per board. ``energy``: measure each board
    with its own sensor (its profile's ``power_method``); a board without one, or whose sensor
    cannot be opened, keeps its latency results and says why in ``energy_error``."""
    boards = {name: load_board(name) for name in {b for _, b in entries}}
    builds, build_errors = (_build_each(boards, log, toolchain) if kw.get("models")
                            else ({}, {}))

    def one(host: str, board: str) -> dict[str, Any]:
        log(f"{host}: benchmarking ({board})")
        remote = Remote(host, config=ssh_config)
        if energy is None:
            return bench_host(boards[board], remote, build=builds.get(board), log=log, **kw)
        try:
            plan = open_board_sensor(boards[board], remote, energy, log=log, label=host)
        except Exception as e:  # noqa: BLE001  (a sensor that fails costs the energy, not latency)
            log(f"{host}: no energy measurement: {e}")
            result = bench_host(boards[board], remote, build=builds.get(board), log=log, **kw)
            result["energy_error"] = str(e)
            return result
        with plan:
            return bench_host(boards[board], remote, build=builds.get(board), log=log,
                              energy=plan, **kw)

    results = []
    failures = [_failure(h, b, build_errors[b], log) for h, b in entries if b in build_errors]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, h, b): (h, b) for h, b in entries if b not in build_errors}
        for future in concurrent.futures.as_completed(futures):
            host, board = futures[future]
            try:
                results.append(future.result())
            # Any failure, not only CrispError: a corrupt manifest.json on one board (a
            # JSONDecodeError, a KeyError) must not discard every other board's results.
            # KeyboardInterrupt and SystemExit are not Exceptions: they still stop the fleet.
            except Exception as e:
                failures.append(_failure(host, board, e, log))
    order = {h: i for i, (h, _) in enumerate(entries)}
    results.sort(key=lambda r: order[r["host"]])
    failures.sort(key=lambda f: order[f["host"]])
    return {"format": FLEET_FORMAT, "results": results, "failures": failures}
