"""`make bench` / `crisp-edge peerbench` (also `crisp-edge bench --local`): crisp-edge against the
runtimes a user would otherwise pick, on this machine, in one run (docs/benchmarks.md).

For each architecture (ImageNet shape, batch 1) and each sparsity of the prunable weights, one
set of weights is made (:func:`sparsify`: every block layer keeps the same fraction of its 16×16
blocks by weight magnitude, 2:4 inside them) and every system runs exactly those weights on the
same input with the same thread count:

* crisp hybrid-sparse: the ``.crisp`` file as the packer stores those weights, optimised kernels;
* crisp dense: the dense model stored dense (at sparsity 0);
* the dense peers, timed in every row: torch eager (``torch.set_num_threads``), ONNX Runtime
  (``intra_op_num_threads``) and TFLite through the LiteRT interpreter with its default XNNPACK
  delegate (``num_threads``), the ``.tflite`` converted by the official litert-torch converter.
  They run the dense model (a dense runtime's speed does not depend on the weight values), so
  each is converted once per architecture. A peer that is not installed, or fails to convert,
  is reported as skipped with the reason, never estimated.

Latency is the median and p90 of ``--runs`` timed runs after ``--warmup`` runs; systems are
timed in interleaved rounds so machine noise hits them alike. Results go to a JSON file and a
Markdown table with plots (docs/benchmarks.md). The per-layer microbenchmark
(:func:`layer_bench`) times single conv layers of ResNet-50's shapes dense and hybrid and
reports dense-equivalent GFLOP/s against the measured dense peak.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crisp_edge.errors import ArgumentError, CrispError, PeerUnavailableError

REPO = Path(__file__).resolve().parents[2]
ARCHS = ("resnet50", "mobilenet_v2", "vgg16_bn")
SPARSITIES = (0.0, 0.5, 0.75, 0.9, 0.95)
PEERS = ("torch", "onnxruntime", "tflite")


# ----------------------------------------------------------------------------- weights

def sparsify(model: Any, example: Any, sparsity: float, nm: tuple[int, int] = (2, 4),
             block: tuple[int, int] = (16, 16), shared_rows: int = 1) -> dict[str, Any]:
    """Masks {parameter: bool tensor} that make every block layer of ``model`` (docs/pruning.md#the-pattern roles)
    exactly ``sparsity`` sparse: N:M inside a balanced set of the highest-magnitude blocks
    (the same kept-block fraction in every block-row of every layer). N:M-only layers (the
    classifier) get N:M when ``sparsity`` >= 1 - N/M; exempt layers stay dense. Sparsity 0
    gives no masks. ``shared_rows`` = V > 1: V rows of a block-row share each N:M selection
    (docs/pruning.md#row-shared-nm). A benchmark pattern, not a pruning method: it fixes the density of every
    layer so the measured speed is the kernels', whatever a pruning run would distribute."""
    import torch

    from crisp_edge.format.pattern import Pattern
    from crisp_edge.pruning.masks import (balanced_block_mask, block_scores, expand_block_mask,
                                          find_prunable_layers, from_matrix,
                                          keep_ratio_for_sparsity, nm_mask, to_matrix)

    if sparsity == 0:
        return {}
    pattern = Pattern(nm[0], nm[1], block[0], block[1], shared_rows)
    rho = keep_ratio_for_sparsity(sparsity, pattern)
    params = dict(model.named_parameters())
    masks: dict[str, Any] = {}
    for layer in find_prunable_layers(model, example, pattern):
        if not (layer.blocks or layer.nm):
            continue
        w = to_matrix(params[layer.param].detach()).abs().to(torch.float64)
        keep = torch.ones_like(w, dtype=torch.bool)
        if layer.blocks:
            scores = block_scores(w, pattern.block_rows, pattern.block_cols)
            per_row = max(1, int(round(rho * scores.shape[1])))
            kept = balanced_block_mask(scores, per_row, torch.ones_like(scores, dtype=torch.bool))
            keep = expand_block_mask(kept, w.shape, pattern.block_rows, pattern.block_cols)
        if layer.nm:
            keep &= nm_mask(w, pattern.n, pattern.m, shared_rows=shared_rows,
                            block_rows=pattern.block_rows)
        masks[layer.param] = from_matrix(keep, params[layer.param].shape)
    return masks


def apply_masks(model: Any, masks: dict[str, Any]) -> Any:
    """A copy of ``model`` with the masked weights zeroed (what every system runs)."""
    import torch

    out = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in out.named_parameters():
            if name in masks:
                p.mul_(masks[name].to(p.dtype))
    return out


# ----------------------------------------------------------------------------- timing

@dataclass
class System:
    """One thing to time: ``run()`` does one batch-1 inference."""

    name: str
    run: Callable[[], Any]
    times_ms: list[float] = field(default_factory=list)


ORDERS = ("auto", "interleaved", "blocks")
# Quiet before each block of time_blocks: the previous system's spinning workers go to sleep.
SETTLE_S = 0.25
# Least warm-up time of each block (time_blocks): the cores' ramp after the quiet.
WARMUP_S = 0.1


def time_interleaved(systems: list[System], warmup: int, runs: int) -> None:
    """Warm every system up, then time ``runs`` rounds; each round runs every system once, in a
    rotating order, so slow drifts of the machine spread over all of them (single-threaded
    runs)."""
    for s in systems:
        for _ in range(warmup):
            s.run()
    for r in range(runs):
        for i in range(len(systems)):
            s = systems[(i + r) % len(systems)]
            t0 = time.perf_counter()
            s.run()
            s.times_ms.append(1000 * (time.perf_counter() - t0))


def time_blocks(systems: list[System], warmup: int, runs: int, passes: int = 2) -> None:
    """Multi-threaded runs: each system runs back to back (its own warm-up, then its share of
    ``runs``), in ``passes`` passes of alternating order so slow drifts spread over all.
    Interleaving single calls does not work with threads: a runtime's worker threads keep
    spinning after its call (OpenMP, ONNX Runtime, pthreadpool, crisp's pool) and would share
    the cores with the next system, and pausing until they sleep leaves the next call waking
    halted cores (in a VM, milliseconds). Back to back is also how a camera loop runs. Each
    block starts after SETTLE_S of quiet, so the previous system's spinning threads have
    gone to sleep before the warm-up wakes the cores again (without it, crisp's block in the
    sparsity-0 row, which follows each peer's agreement-check call, had a p90 1.29-1.33× its
    median at 2 threads; 1.03 in `crisp-bench` and 1.06 with the quiet). The warm-up is at least
    ``warmup`` calls and WARMUP_S seconds: woken cores take a few milliseconds to reach
    speed (TFLite's MobileNetV2 at 2 threads after a pause: 3.9, 3.2, 3.1, 2.9 ms, then
    2.6-2.8), longer than three calls of a small model."""
    share = [runs // passes + (1 if p < runs % passes else 0) for p in range(passes)]
    for p in range(passes):
        for s in (systems if p % 2 == 0 else systems[::-1]):
            time.sleep(SETTLE_S)
            warm_until, calls = time.perf_counter() + WARMUP_S, 0
            while calls < warmup or time.perf_counter() < warm_until:
                s.run()
                calls += 1
            for _ in range(share[p]):
                t0 = time.perf_counter()
                s.run()
                s.times_ms.append(1000 * (time.perf_counter() - t0))


def time_systems(systems: list[System], threads: int, order: str, warmup: int,
                 runs: int) -> None:
    """Time ``systems`` in ``order`` (one of ORDERS; "auto": interleaved at 1 thread, blocks at
    more)."""
    if order == "blocks" or (order == "auto" and threads > 1):
        time_blocks(systems, warmup, runs)
    else:
        time_interleaved(systems, warmup, runs)


def summary(times_ms: list[float]) -> dict[str, float]:
    a = np.asarray(times_ms)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
            "min_ms": float(a.min()), "runs": int(a.size)}


# ----------------------------------------------------------------------------- peers

# A peer that cannot run here raises PeerUnavailableError (crisp_edge.errors): reported, skipped.


def torch_peer(model: Any, x: np.ndarray, threads: int) -> Callable[[], Any]:
    import torch

    torch.set_num_threads(threads)
    xt = torch.from_numpy(x)

    def run() -> Any:
        with torch.inference_mode():
            return model(xt)
    return run


def onnxruntime_peer(model: Any, x: np.ndarray, threads: int, workdir: Path,
                     tag: str) -> Callable[[], Any]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise PeerUnavailableError(f"onnxruntime not installed ({e}); pip install '.[peers]'"
                                   ) from None
    import torch

    path = workdir / f"{tag}.onnx"
    if not path.is_file():
        try:
            torch.onnx.export(model, (torch.from_numpy(x),), str(path), input_names=["x"],
                              output_names=["y"], dynamo=False)
        except Exception as e:  # noqa: BLE001 - any exporter failure means "skipped"
            raise PeerUnavailableError(f"torch.onnx.export failed: {type(e).__name__}: {e}"
                                       ) from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"x": x})


def tflite_peer(model: Any, x: np.ndarray, threads: int, workdir: Path,
                tag: str) -> Callable[[], Any]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError as e:
            raise PeerUnavailableError("no TFLite interpreter (ai-edge-litert or "
                                       f"tflite-runtime): {e}; pip install '.[peers]'") from None
    path = workdir / f"{tag}.tflite"
    if not path.is_file():
        try:
            import litert_torch
        except ImportError as e:
            raise PeerUnavailableError(f"litert-torch converter not installed ({e}); "
                                       "pip install '.[peers]'") from None
        import torch

        try:
            litert_torch.convert(model.eval(), (torch.from_numpy(x),)).export(str(path))
        except Exception as e:  # noqa: BLE001 - any converter failure means "skipped"
            raise PeerUnavailableError(f"litert-torch conversion failed: {type(e).__name__}: "
                                       f"{str(e)[:200]}") from None
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        raise PeerUnavailableError(f"the .tflite input is {tuple(inp['shape'])}, not {x.shape}")
    out_index = interp.get_output_details()[0]["index"]

    def run() -> Any:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out_index)
    return run


# ----------------------------------------------------------------------------- memory

def crisp_bench_run(crisp_bench: Path, model_path: Path, threads: int
                    ) -> tuple[float, float, list[dict[str, Any]]] | None:
    """``crisp-bench --profile`` on ``model_path``: its peak resident memory in MB (the
    footprint a board sees, without Python; it reads its own VmHWM), its load time in ms and
    where the time goes per op kind and kernel. None when the tool is not built."""
    if not crisp_bench.is_file():
        return None
    out = subprocess.run([str(crisp_bench), str(model_path), "--threads", str(threads),
                          "--runs", "10", "--warmup", "1", "--json", "--profile"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"crisp-bench failed on {model_path}: {out.stderr.strip()}")
    model = json.loads(out.stdout)["models"][0]
    result = model["results"][0]
    return result["peak_rss_kb"] / 1024.0, model["load_ms"], result.get("profile", [])


# ----------------------------------------------------------------------------- the run

def _packed_for_host(path: Path) -> bool:
    """Whether a cached file exists and was packed for this machine's kernels (a file from
    before ``isa`` existed, packed ``portable`` or for another tier, keeps layers the runtime
    then expands)."""
    from crisp_edge import runtime
    from crisp_edge.format import read_model

    if not path.is_file():
        return False
    try:
        return (read_model(path).provenance or {}).get("isa") == runtime.kernel_isa()
    except CrispError:
        return False


def build_models(arch: str, variants: list[tuple[float, int]], workdir: Path, seed: int = 0
                 ) -> tuple[Any, dict[tuple[float, int], tuple[Any, Path]], Path]:
    """The torch model and, per (sparsity, shared rows V), (masked torch model, .crisp as
    packed); plus the dense .crisp of the unmasked model. Files are cached in ``workdir``."""
    import torch

    import crisp_edge.models.zoo as zoo
    from crisp_edge.packing.pack import pack

    torch.manual_seed(seed)
    base = getattr(zoo, arch)(num_classes=1000).eval()
    example = torch.zeros(1, 3, 224, 224)
    dense_path = workdir / f"{arch}-dense.crisp"
    if not dense_path.is_file():
        pack(base, example, dense_path, pattern_mode="dense")
    out: dict[tuple[float, int], tuple[Any, Path]] = {}
    for s, v in variants:
        masks = sparsify(base, example, s, shared_rows=v)
        model = apply_masks(base, masks)
        path = workdir / f"{arch}-s{round(100 * s)}{f'-v{v}' if v > 1 else ''}.crisp"
        if not _packed_for_host(path):
            pack(model, example, path, pattern_mode="auto", isa="host")
        out[(s, v)] = (model, path)
    return base, out, dense_path


def variants_of(args: Options) -> list[tuple[float, int]]:
    """(sparsity, V) pairs: every sparsity per-row, plus each --shared-rows V > 1 at every
    sparsity that removes blocks (at 50 % a 2:4 pattern with V > 1 is the same speed story)."""
    out = [(s, 1) for s in args.sparsities]
    out += [(s, v) for v in args.shared_rows if v > 1 for s in args.sparsities if s > 0.5]
    return out


def bench_arch(arch: str, args: Options, workdir: Path) -> list[dict[str, Any]]:
    """Rows of one architecture: per thread count and sparsity, crisp on that sparsity's file
    timed in interleaved rounds with crisp's dense file and the dense peers (converted once
    from the dense model: a dense runtime's speed does not depend on the weight values).
    crisp dense runs in every row, so "sparse never slower than dense" compares two times
    taken in the same rounds, not two rows minutes apart on a drifting machine."""
    from crisp_edge import runtime
    base, models, dense_path = build_models(arch, variants_of(args), workdir)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    rows: list[dict[str, Any]] = []
    for threads in args.threads:
        peers: list[System] = []
        skipped: dict[str, str] = {}
        makers = {"torch": lambda: torch_peer(base, x, threads),
                  "onnxruntime": lambda: onnxruntime_peer(base, x, threads, workdir,
                                                          f"{arch}-dense"),
                  "tflite": lambda: tflite_peer(base, x, threads, workdir, f"{arch}-dense")}
        for name in args.peers:
            try:
                peers.append(System(name, makers[name]()))
            except PeerUnavailableError as e:
                skipped[name] = str(e)
                print(f"[bench] {arch}: {name} skipped: {e}", flush=True)
        dense = runtime.load(dense_path, threads=threads)
        for (s, v), (model, path) in models.items():
            crisp = runtime.load(path, threads=threads)
            info = crisp.info()
            systems = [System("crisp hybrid" if s > 0 else "crisp", lambda m=crisp: m.run(x)),
                       System("crisp dense", lambda m=dense: m.run(x))]
            # Same function before timing: crisp against torch on these very weights, and
            # at sparsity 0 every peer against crisp.
            import torch

            with torch.inference_mode():
                want = model(torch.from_numpy(x)).numpy().reshape(-1)
            scale = max(1e-6, float(np.abs(want).max()))
            agree = {"crisp vs torch (same weights)":
                     float(np.abs(systems[0].run().reshape(-1) - want).max() / scale)}
            for peer in peers:
                if s == 0:
                    got = np.asarray(peer.run()).reshape(-1)
                    agree[peer.name] = float(np.abs(got - want).max() / scale)
                peer.times_ms = []
            time_systems(systems + peers, threads, args.order, args.warmup, args.runs)
            row = {"arch": arch, "sparsity": s, "shared_rows": v, "threads": threads,
                   "kernel_isa":
                   runtime.kernel_isa(), "file_bytes": info["file_bytes"], "arena_bytes":
                   info["arena_bytes"], "macs": info["macs"], "effective_macs":
                   info["effective_macs"], "skipped": skipped, "max_rel_diff": agree,
                   "systems": {sys_.name: summary(sys_.times_ms) for sys_ in systems + peers},
                   "op_kernels": crisp.op_kernels()}
            measured = crisp_bench_run(Path(args.crisp_bench), path, threads) \
                if args.crisp_bench else None
            if measured is not None:
                row["peak_rss_mb"], row["load_ms"], row["profile"] = measured
                row["memory_bound_mb"] = (info["file_bytes"] + 2 * info["arena_bytes"]) / 2**20 + 16
            rows.append(row)
            print(f"[bench] {arch} {round(100 * s)} % V={v} threads={threads}: " + ", ".join(
                f"{k} {v['median_ms']:.2f} ms" for k, v in row["systems"].items()), flush=True)
            crisp.close()
        dense.close()
    return rows


# ----------------------------------------------------------------------------- layers

# ResNet-50's conv shapes at 224 px: (Cin, H, W, Cout, k, stride).
RESNET50_LAYERS = (
    (64, 56, 56, 64, 1, 1), (64, 56, 56, 64, 3, 1), (64, 56, 56, 256, 1, 1),
    (256, 56, 56, 64, 1, 1), (128, 28, 28, 128, 3, 1), (128, 28, 28, 512, 1, 1),
    (512, 28, 28, 128, 1, 1), (256, 14, 14, 256, 3, 1), (256, 14, 14, 1024, 1, 1),
    (1024, 14, 14, 256, 1, 1), (512, 7, 7, 512, 3, 1), (512, 7, 7, 2048, 1, 1),
    (2048, 7, 7, 512, 1, 1),
)


def layer_bench(args: Options, workdir: Path) -> list[dict[str, Any]]:
    """Each ResNet-50 conv shape as a one-layer model: dense, and hybrid at each density, on
    one thread; dense-equivalent GFLOP/s = 2 · dense MACs / time. The target (issue 5): a
    hybrid layer at density d reaches >= 50 % of (best dense GFLOP/s / d)."""
    import torch

    from crisp_edge import runtime
    from crisp_edge.packing.pack import pack

    rows = []
    for shape in RESNET50_LAYERS:
        cin, h, w, cout, k, stride = shape
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(cin, cout, k, stride, k // 2, bias=False).eval()
        net = torch.nn.Sequential(conv, torch.nn.ReLU())
        x = np.random.default_rng(0).standard_normal((1, cin, h, w)).astype(np.float32)
        macs = cout * cin * k * k * h * w // stride**2
        entry: dict[str, Any] = {"shape": list(shape), "macs": macs, "hybrid": {}}
        for v, label in ((1, "per-row"), (4, "row-shared V=4")):
            for s in [0.0] + [d for d in args.layer_sparsities]:
                if s == 0 and v > 1:
                    continue
                masks = layer_masks(conv, s, v)
                model = apply_masks(net, {"0.weight": masks} if masks is not None else {})
                path = workdir / f"layer-{'-'.join(map(str, shape))}-s{round(100 * s)}-v{v}.crisp"
                if not _packed_for_host(path):
                    pack(model, torch.from_numpy(x), path,
                         pattern_mode="dense" if s == 0 else "auto", isa="host")
                m = runtime.load(path, threads=1)
                sys_ = System("crisp", lambda m=m: m.run(x))
                time_interleaved([sys_], 3, args.layer_runs)
                ms = summary(sys_.times_ms)["median_ms"]
                gflops = 2 * macs / (ms / 1000) / 1e9
                if s == 0:
                    entry["dense_ms"], entry["dense_gflops"] = ms, gflops
                else:
                    entry["hybrid"].setdefault(label, {})[str(s)] = {
                        "ms": ms, "dense_equivalent_gflops": gflops,
                        "density": m.info()["effective_macs"] / macs}
                m.close()
        rows.append(entry)
        print(f"[bench] layer {shape}: dense {entry['dense_gflops']:.0f} GFLOP/s", flush=True)
    return rows


def layer_masks(conv: Any, sparsity: float, shared_rows: int) -> Any:
    """Hybrid 2:4-in-16×16 mask of one conv at ``sparsity`` (None at 0), random blocks."""
    import torch

    from crisp_edge.pruning.masks import (balanced_block_mask, expand_block_mask, from_matrix, nm_mask,
                                  to_matrix)

    if sparsity == 0:
        return None
    w = to_matrix(conv.weight.detach()).abs().to(torch.float64)
    rows, cols = w.shape
    nbr, nbc = -(-rows // 16), -(-cols // 16)
    per_row = max(1, int(round((1 - sparsity) / 0.5 * nbc)))
    g = torch.Generator().manual_seed(0)
    kept = balanced_block_mask(torch.rand(nbr, nbc, generator=g, dtype=torch.float64), per_row,
                               torch.ones(nbr, nbc, dtype=torch.bool))
    keep = expand_block_mask(kept, w.shape, 16, 16)
    if cols % 4 == 0:
        keep &= nm_mask(w, 2, 4, shared_rows=shared_rows, block_rows=16)
    return from_matrix(keep, conv.weight.shape)


# ----------------------------------------------------------------------------- report

@dataclass
class Options:
    """What one benchmark run measures (the options of ``crisp-edge peerbench``)."""

    archs: list[str] = field(default_factory=lambda: list(ARCHS))
    sparsities: list[float] = field(default_factory=lambda: list(SPARSITIES))
    shared_rows: list[int] = field(default_factory=lambda: [1, 4])
    threads: list[int] = field(default_factory=lambda: [1, 2])
    peers: list[str] = field(default_factory=lambda: list(PEERS))
    warmup: int = 3
    runs: int = 10
    layers: bool = True
    layer_sparsities: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9, 0.95])
    layer_runs: int = 15
    crisp_bench: str = str(REPO / "build" / "native" / "runtime" / "crisp-bench")
    work_dir: Path = REPO / "bench-results" / "peers"
    out: Path = REPO / "docs" / "benchmarks.md"
    quick: bool = False
    # "interleaved": single calls in rotating order, so every call starts with the caches the
    # other systems left (cold weights); "blocks": each system back to back, as a camera loop
    # runs one model (hot weights); "auto": interleaved at 1 thread, blocks at more (see
    # time_blocks for why threads need blocks).
    order: str = "auto"

    def validate(self) -> Options:
        """Apply ``quick`` (mobilenet_v2 only, sparsity 0 and 0.9, 1 thread, 3 runs) and check
        the peers; an ArgumentError names what is wrong."""
        if self.quick:
            self.archs, self.sparsities, self.threads, self.runs = ["mobilenet_v2"], [0.0, 0.9], \
                [1], 3
            self.shared_rows, self.layer_sparsities, self.layer_runs, self.warmup = [1], [0.9], 3, 1
            if self.out == REPO / "docs" / "benchmarks.md":
                self.out = self.work_dir / "quick" / "benchmarks.md"
        if self.order not in ORDERS:
            raise ArgumentError(f"unknown order {self.order!r}; choose from {', '.join(ORDERS)}")
        for p in self.peers:
            if p not in PEERS:
                raise ArgumentError(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")
        return self


def run(options: Options, command: str) -> int:
    """Measure everything ``options`` asks for; write the Markdown report, its JSON and plots."""
    args = options.validate()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": recorded_command(command), "machine": platform.machine(),
        "cpu": _cpu_model(), "python": platform.python_version(), "versions": _versions(),
        "order": args.order, "rows": [], "layers": []}
    for arch in args.archs:
        results["rows"] += bench_arch(arch, args, args.work_dir)
    if args.layers:
        results["layers"] = layer_bench(args, args.work_dir)
    results["wall_time_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.write_text(markdown_with_plots(results, args.out), encoding="utf-8")
    print(f"[bench] wrote {args.out} and {args.out.with_suffix('.json')} "
          f"({results['wall_time_s']:.0f} s)", flush=True)
    return 0


def markdown_with_plots(results: dict[str, Any], out: Path) -> str:
    from crisp_edge.measure.peerbench_report import plots, render

    return render(results, plots(results, out.parent, out.stem))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def recorded_command(command: str) -> str:
    """The command as the report shows it. The library the binding loads is
    part of what was measured: run with CRISP_LIBRARY (a build tree's
    libcrisp), the command says so, so a rerun takes the same build rather
    than the installed package's (which `make bench` reinstalls first)."""
    library = os.environ.get("CRISP_LIBRARY")
    if not library:
        return command.strip()
    path = Path(library)
    try:  # relative to the checkout it was run in, as the rest of the command
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return f"CRISP_LIBRARY={path} {command.strip()}"


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("crisp-edge", "torch", "onnxruntime", "ai-edge-litert", "litert-torch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out

