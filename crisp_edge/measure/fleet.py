"""A fleet benchmark: every (host, board) of a fleet file benchmarked concurrently, each board
with its own power sensor when energy is asked for (:mod:`crisp_edge.measure.fieldbench` measures
one board, :mod:`crisp_edge.measure.fieldenergy` opens its sensor)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any, Sequence

from crisp_edge.errors import CrispError
from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.bundle import build_runtime
from crisp_edge.deploy.ssh import Remote
from crisp_edge.measure.fieldbench import FLEET_FORMAT, Log, bench_host
from crisp_edge.measure.fieldenergy import EnergyOptions, open_board_sensor


def bench_fleet(entries: Sequence[tuple[str, str]], *, ssh_config: Path | None = None,
                jobs: int = 8, log: Log = lambda _: None, energy: EnergyOptions | None = None,
                **kw: Any) -> dict[str, Any]:
    """Benchmark every (host, board) concurrently; one failing board is recorded, not fatal.
    Boards that need a build are built first, once per board. ``energy``: measure each board
    with its own sensor (its profile's ``power_method``); a board without one, or whose sensor
    cannot be opened, keeps its latency results and says why in ``energy_error``."""
    boards = {name: load_board(name) for name in {b for _, b in entries}}
    # Built here, one board after the other: concurrent builds of one tree would collide.
    builds = {name: build_runtime(board, log=log) for name, board in boards.items()
              } if kw.get("models") else {}

    def one(host: str, board: str) -> dict[str, Any]:
        log(f"{host}: benchmarking ({board})")
        remote = Remote(host, config=ssh_config)
        if energy is None:
            return bench_host(boards[board], remote, build=builds.get(board), log=log, **kw)
        try:
            plan = open_board_sensor(boards[board], remote, energy, log=log, label=host)
        except CrispError as e:
            log(f"{host}: no energy measurement: {e}")
            result = bench_host(boards[board], remote, build=builds.get(board), log=log, **kw)
            result["energy_error"] = str(e)
            return result
        with plan:
            return bench_host(boards[board], remote, build=builds.get(board), log=log,
                              energy=plan, **kw)

    results, failures = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, h, b): (h, b) for h, b in entries}
        for future in concurrent.futures.as_completed(futures):
            host, board = futures[future]
            try:
                results.append(future.result())
            except CrispError as e:
                log(f"{host}: failed: {e}")
                failures.append({"host": host, "board": board, "error": str(e)})
    order = {h: i for i, (h, _) in enumerate(entries)}
    results.sort(key=lambda r: order[r["host"]])
    failures.sort(key=lambda f: order[f["host"]])
    return {"format": FLEET_FORMAT, "results": results, "failures": failures}
