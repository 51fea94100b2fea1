"""int8 against float32 on the same hybrid-sparse weights (issue 16): for each architecture,
sparsity and V, the peerbench pattern (crisp_edge.measure.peerbench.sparsify) is packed twice,
float32 and int8 (calibrated on the same random images), and both files run through the
runtime in one process, timed in interleaved rounds (1 thread) or alternating blocks (more),
on the same input. Prints the median latencies and the ratio fp32 / int8 (> 1: int8 faster).

    python bench/int8_bench.py [--archs resnet50,mobilenet_v2] [--sparsity 0.9] [--v 1,4]
                               [--threads 1,2] [--runs 30] [--workdir bench-results/int8]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np


def build(arch: str, sparsity: float, v: int, workdir: Path) -> tuple[Path, Path]:
    import torch

    import crisp_edge.models.zoo as zoo
    from crisp_edge.measure.peerbench import apply_masks, sparsify
    from crisp_edge.packing.pack import pack

    tag = f"{arch}-s{round(100 * sparsity)}-v{v}"
    f32, i8 = workdir / f"{tag}.crisp", workdir / f"{tag}-int8.crisp"
    if f32.is_file() and i8.is_file():
        return f32, i8
    torch.manual_seed(0)
    base = getattr(zoo, arch)(num_classes=1000).eval()
    example = torch.zeros(1, 3, 224, 224)
    model = apply_masks(base, sparsify(base, example, sparsity, shared_rows=v))
    calibration = torch.from_numpy(
        np.random.default_rng(1).standard_normal((8, 3, 224, 224)).astype(np.float32))
    if not f32.is_file():
        pack(model, example, f32, pattern_mode="auto")
    if not i8.is_file():
        pack(model, example, i8, pattern_mode="auto", int8=True, calibration=calibration)
    return f32, i8


def main() -> None:
    from crisp_edge import runtime
    from crisp_edge.measure.peerbench import System, summary, time_blocks, time_interleaved

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="resnet50,mobilenet_v2")
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--v", default="1,4")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=Path("bench-results/int8"))
    a = p.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    print(f"{'model':32} {'thr':>3} {'fp32 ms':>9} {'int8 ms':>9} {'fp32/int8':>9}")
    for arch in a.archs.split(","):
        for v in (int(s) for s in a.v.split(",")):
            f32, i8 = build(arch, a.sparsity, v, a.workdir)
            for threads in (int(t) for t in a.threads.split(",")):
                mf, mq = runtime.load(f32, threads=threads), runtime.load(i8, threads=threads)
                systems = [System("fp32", lambda m=mf: m.run(x)),
                           System("int8", lambda m=mq: m.run(x))]
                (time_blocks if threads > 1 else time_interleaved)(systems, a.warmup, a.runs)
                tf = summary(systems[0].times_ms)["median_ms"]
                tq = summary(systems[1].times_ms)["median_ms"]
                print(f"{f32.stem:32} {threads:>3} {tf:9.2f} {tq:9.2f} {tf / tq:9.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
