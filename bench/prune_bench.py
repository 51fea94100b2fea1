"""`make bench-prune`: CRISP vs the dense model vs every baseline on the synthetic 100-class set,
over several seeds, at equal fine-tuning budget.

For each architecture (CIFAR-size ResNet-18 and MobileNetV2 by default) a base model is trained
on all 100 classes (cached by its settings). Then for each target sparsity, each number of user
classes k (the first k of a fixed seeded permutation of the class ids), each seed and each
variant (a pruning method with its settings) one pruning run is made. A run is one unit of work:
its result is a JSON file in RUNS_DIR (docs/prune-benchmark-runs/, committed), written
atomically when the run ends, and its per-step state lives in OUT_DIR/units/<unit>.ckpt/ while
it runs, so an interrupted benchmark resumes where it stopped, also in another checkout
(finished units are skipped, a unit cut midway continues from its last finished step; base
models are retrained from their settings, and each run records its base model's sha256). Units
run in ``--jobs`` worker processes with one torch thread each.

    python bench/prune_bench.py                       # full scale: ≈ 2.75 h on 2 cores with the
                                                      # base models, ≈ 1 h more to train them
    python bench/prune_bench.py --ablations           # and the ablations (≈ 1 h more)
    python bench/prune_bench.py --quick               # minutes: proves the pipeline works

Every variant uses the same schedule, the same recovery settings (distillation, BatchNorm
re-estimation) and so the same budget in image passes, stated in the table. The paper's claim
under test: CRISP stays close to dense and ahead of class-agnostic (magnitude-hybrid) and
channel pruning at the same sparsity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from crisp_edge.pruning import recipe  # torch-free: the defaults the benchmark runs

REPO = Path(__file__).resolve().parent.parent
BASELINES = ["magnitude-hybrid", "unstructured", "nm-only", "block-only", "channel"]
# variant name → (method, PruneConfig overrides): the grid, every method of `compare`
# and "crisp", the default configuration.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "crisp": ("crisp", {}),
    **{name: (name, {}) for name in BASELINES},
}
# The measurements behind the defaults: "crisp-per-row" (what row-shared N:M costs) and one
# setting (or the method) changed at a time from it (made before row-shared N:M became the
# default; comparable with their runs).
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {name: (method, {"shared_rows": 1, **changes})
                                                    for name, (method, changes) in {
    "crisp-per-row": ("crisp", {}),
    "crisp-alloc-global": ("crisp", {"allocation": "global"}),
    "crisp-alloc-normalized": ("crisp", {"allocation": "normalized"}),
    "crisp-alloc-uniform": ("crisp", {"allocation": "uniform"}),
    "crisp-alloc-global-floor": ("crisp", {"allocation": "global", "allocation_floor": 0.1}),
    "crisp-linear": ("crisp", {"schedule_shape": "linear"}),
    "crisp-no-distill": ("crisp", {"distill": False}),
    "crisp-no-bn": ("crisp", {"bn_recalibrate": False}),
    "crisp-original": ("crisp", {"allocation": "global", "schedule_shape": "linear",
                                 "distill": False, "bn_recalibrate": False}),
    "crisp-nm-saliency": ("crisp", {"nm_score": "saliency"}),
    "crisp-nm-magnitude": ("crisp", {"nm_score": "magnitude"}),
    "magnitude-hybrid-per-row": ("magnitude-hybrid", {}),
}.items()}
# Settings added or re-defaulted after runs were recorded, with the value that made those runs: a
# saved run without the key was made with it, and a method that does not read the setting is
# pinned to it (READ_BY), so a change of crisp's default never re-runs the other methods.
LEGACY_CONFIG = {"nm_score": "saliency", "shared_rows": 1}
READ_BY = {"nm_score": {"crisp"}, "shared_rows": {"crisp", "magnitude-hybrid"}}
ALL_VARIANTS = {**VARIANTS, **ABLATIONS}
CLASS_PICKS = {
    "spread": "the first k of a fixed permutation of the 100 classes",
    "same-shape": "the first k classes of that fixed permutation whose shape is the first "
                  "one's (a fine-grained subset: the classes differ by colour and texture only)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="resnet18_cifar,mobilenet_v2_cifar")
    ap.add_argument("--k", default="2,5,10", help="numbers of user classes")
    ap.add_argument("--sparsities", default="resnet18_cifar=0.9+0.95,mobilenet_v2_cifar=0.9",
                    help="ARCH=S[+S...] per arch, or one list S[+S...] for all")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from: {', '.join(ALL_VARIANTS)}")
    ap.add_argument("--ablations", action="store_true",
                    help="also run every ablation variant (seed 0, the first sparsity only)")
    ap.add_argument("--class-pick", choices=sorted(CLASS_PICKS), default="spread",
                    help="which k classes are the user's: " + "; ".join(
                        f"{name}: {text}" for name, text in CLASS_PICKS.items()))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--nm", default="2:4")
    ap.add_argument("--block", default="16x16")
    ap.add_argument("--samples-per-class", type=int, default=40,
                    help="synthetic training renders per class (base training and pruning)")
    ap.add_argument("--test-per-class", type=int, default=100,
                    help="synthetic test renders per user class")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=8, help="base-model training epochs")
    ap.add_argument("--base-lr", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=4, help="block steps after step 0")
    ap.add_argument("--epochs-per-step", type=int, default=1)
    ap.add_argument("--final-epochs", type=int, default=recipe.FINAL_EPOCHS,
                    help="extra epochs at the final sparsity [default: the recipe's, %(default)s]")
    ap.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one thread each)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench-results" / "prune")
    ap.add_argument("--doc", type=Path, default=None,
                    help="Markdown output [default: docs/prune-benchmark.md, with a class "
                         "pick other than spread docs/prune-benchmark-PICK.md; with --quick in "
                         "OUT_DIR]")
    ap.add_argument("--runs-dir", type=Path, default=None,
                    help="one JSON per finished run, the raw data of the doc (committed, so a "
                         "benchmark can resume in another checkout) [default: "
                         "docs/prune-benchmark-runs; with --quick OUT_DIR/runs]")
    ap.add_argument("--quick", action="store_true",
                    help="tiny scale (8 samples/class, 1 base epoch, k=2, 1 seed, 16 px)")
    ap.add_argument("--report", action="store_true",
                    help="run nothing: write the doc from the runs finished so far (a partial "
                         "benchmark says how many of its runs are in)")
    ap.add_argument("--unit", help=argparse.SUPPRESS)  # internal: run one unit (a worker)
    args = ap.parse_args(argv)
    if args.quick:
        args.samples_per_class, args.epochs, args.k, args.steps = 8, 1, "2", 2
        args.image_size, args.batch_size, args.seeds, args.test_per_class = 16, 16, 1, 10
        args.final_epochs = 1
        args.out_dir = args.out_dir.with_name(args.out_dir.name + "-quick")
    if args.runs_dir is None:
        args.runs_dir = args.out_dir / "runs" if args.quick else \
            REPO / "docs" / "prune-benchmark-runs"
    if args.doc is None:
        name = "prune-benchmark" + ("" if args.class_pick == "spread" else
                                    f"-{args.class_pick}") + ".md"
        args.doc = args.out_dir / name if args.quick else REPO / "docs" / name
    unknown = [v for v in args.variants.split(",") if v and v not in ALL_VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from "
                 f"{', '.join(ALL_VARIANTS)}")
    return args


def user_classes(k: int, num_classes: int = 100, pick: str = "spread") -> list[int]:
    """The user's k classes, the same in every run: the first k ids of a fixed permutation (seed
    0), or with ``pick="same-shape"`` the first k of that permutation whose shape is the first
    one's (a fine-grained subset: the user's classes share one shape and differ by colour and
    texture, so the features of the other shapes are of no use to them)."""
    order = [int(c) for c in np.random.default_rng(0).permutation(num_classes)]
    if pick == "spread":
        return order[:k]
    if pick != "same-shape":
        raise ValueError(f"unknown class pick {pick!r}; choose from {', '.join(CLASS_PICKS)}")
    from crisp_edge.data.synthetic import class_prototypes

    shapes = [p.shape for p in class_prototypes(num_classes)]
    same = [c for c in order if shapes[c] == shapes[order[0]]]
    if k > len(same):
        raise ValueError(f"only {len(same)} of the {num_classes} synthetic classes are "
                         f"{shapes[order[0]]}s; use k <= {len(same)} with --class-pick same-shape")
    return same[:k]


def sparsities(args: argparse.Namespace, arch: str) -> list[float]:
    spec = args.sparsities
    if "=" not in spec:
        return [float(s) for s in spec.split("+")]
    for part in spec.split(","):
        name, _, values = part.partition("=")
        if name == arch:
            return [float(s) for s in values.split("+")]
    return [0.9]


def units(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every pruning run of this benchmark, in the order they are scheduled (long ones first,
    so two workers finish together)."""
    out = []
    variants = [v for v in args.variants.split(",") if v]
    archs = args.archs.split(",")
    # Priority order, so that an interrupted benchmark has the most to say: seed 0 of every
    # arch's first sparsity, then the ablations (seed 0), then seeds 1, 2 …, then the further
    # sparsities, seed by seed. Inside a block the long runs (large k) go first.
    ks = sorted((int(v) for v in args.k.split(",")), reverse=True)
    blocks = [(0, arch, sparsities(args, arch)[0], variants) for arch in archs]
    if args.ablations:
        extra = [v for v in ABLATIONS if v not in variants]
        blocks += [(0, arch, sparsities(args, arch)[0], extra) for arch in archs]
    blocks += [(seed, arch, sparsities(args, arch)[0], variants)
               for seed in range(1, args.seeds) for arch in archs]
    blocks += [(seed, arch, s, variants) for seed in range(args.seeds) for arch in archs
               for s in sparsities(args, arch)[1:]]
    for seed, arch, sparsity, names in blocks:
        for k in ks:
            for variant in names:
                u = {"arch": arch, "sparsity": sparsity, "k": k, "seed": seed,
                     "variant": variant}
                out.append(u if args.class_pick == "spread" else {**u, "pick": args.class_pick})
    return out


def unit_id(u: dict[str, Any]) -> str:
    pick = f"-{u['pick']}" if u.get("pick", "spread") != "spread" else ""
    return (f"{u['arch']}{pick}-s{round(100 * u['sparsity'])}-k{u['k']}-seed{u['seed']}-"
            f"{u['variant']}")


def base_path(arch: str, args: argparse.Namespace) -> Path:
    from crisp_edge.pruning.training import TrainConfig

    config = TrainConfig(epochs=args.epochs, lr=args.base_lr, batch_size=128)
    key = json.dumps([arch, args.samples_per_class, args.image_size, config.to_dict()])
    return args.out_dir / f"base-{arch}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.pt"


def train_base(arch: str, args: argparse.Namespace) -> Path:
    """Train (or reuse) the base model of ``arch`` for these settings."""
    from crisp_edge.pruning.runs import run_train
    from crisp_edge.pruning.training import TrainConfig

    path = base_path(arch, args)
    if not path.is_file():
        config = TrainConfig(epochs=args.epochs, lr=args.base_lr, batch_size=128)
        print(f"[bench] training {arch} base model → {path}", flush=True)
        run_train(arch=arch, model_source=None, data="synthetic:100", out=path, config=config,
                  image_size=args.image_size, samples_per_class=args.samples_per_class,
                  progress=False)
    return path


def prune_config(u: dict[str, Any], args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from crisp_edge.pruning.engine import PruneConfig

    method, overrides = ALL_VARIANTS[u["variant"]]
    pinned = {key: LEGACY_CONFIG[key] for key, readers in READ_BY.items() if method not in readers}
    overrides = {**pinned, **overrides}
    config = PruneConfig(method=method, sparsity=u["sparsity"], nm=args.nm, block=args.block,
                         steps=args.steps, epochs_per_step=args.epochs_per_step,
                         final_epochs=args.final_epochs, lr=args.lr, batch_size=args.batch_size,
                         seed=u["seed"], image_size=args.image_size,
                         samples_per_class=args.samples_per_class,
                         test_samples_per_class=args.test_per_class, eval_steps=False)
    return replace(config, **overrides)


def run_unit(u: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One pruning run (in a worker process); resumes from its checkpoint directory."""
    import torch

    from crisp_edge.models.checkpoint import remove_resume_state
    from crisp_edge.pruning.engine import prune
    from crisp_edge.pruning.runs import load_base

    torch.set_num_threads(1)
    config = prune_config(u, args)
    base = base_path(u["arch"], args)
    model, _, _, _ = load_base(u["arch"], None, base, None)
    ckpt = args.out_dir / "units" / (unit_id(u) + ".ckpt")  # scratch: not committed
    started = time.perf_counter()
    classes = user_classes(u["k"], pick=u.get("pick", "spread"))
    # No model is saved, so the per-class statistics a device needs are not measured.
    result = prune(model, "synthetic:100", classes, config, progress=False,
                   checkpoint_dir=ckpt, resume=True, class_saliency=False)
    report = result.report
    out = {**u, "classes": report["classes"], "dense": report["accuracy"]["dense"],
           "final": report["accuracy"]["final"], "sparsity_achieved":
           report["sparsity"]["achieved"], "effective_macs": report["macs"]["effective"],
           "dense_macs": report["macs"]["dense"], "budget": report["budget"],
           "config": report["config"], "wall_time_s": report["wall_time_s"],
           "this_process_s": time.perf_counter() - started,
           "base_sha256": hashlib.sha256(base.read_bytes()).hexdigest(),
           "layer_density": {row["name"]: row["density"] for row in report["layers"]}}
    path = args.runs_dir / (unit_id(u) + ".json")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, path)
    remove_resume_state(ckpt)  # the unit's state, now done; the same safe removal as prune
    return out


_BASE_DIGESTS: dict[str, str] = {}


def _base_digest(arch: str, args: argparse.Namespace) -> str | None:
    path = base_path(arch, args)
    if arch not in _BASE_DIGESTS and path.is_file():
        _BASE_DIGESTS[arch] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _BASE_DIGESTS.get(arch)


def finished(u: dict[str, Any], args: argparse.Namespace) -> dict[str, Any] | None:
    """The finished run of ``u``, or None: none yet, or one made with other settings or from
    another base model (a run is named by arch, sparsity, k, seed and variant only, so a change
    of --epochs or of a default would otherwise reuse stale results)."""
    path = args.runs_dir / (unit_id(u) + ".json")
    if not path.is_file():
        return None
    run = json.loads(path.read_text())
    stale = []
    if {**LEGACY_CONFIG, **run.get("config", {})} != prune_config(u, args).to_dict():
        stale.append("settings")
    digest = _base_digest(u["arch"], args)
    if digest is not None and run.get("base_sha256") != digest:
        stale.append("base model")
    if "classes" in run and run["classes"] != user_classes(u["k"], pick=u.get("pick", "spread")):
        stale.append("user classes")
    if stale:
        print(f"[bench] {unit_id(u)}: the saved run has other {' and '.join(stale)}; "
              "running it again", flush=True)
        return None
    return run


def _worker_command(u: dict[str, Any], argv: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *argv, "--unit", json.dumps(u)]


def run_all(args: argparse.Namespace, argv: list[str]) -> list[dict[str, Any]]:
    """Train the bases, then run every unit not done yet over ``--jobs`` workers."""
    (args.out_dir / "units").mkdir(parents=True, exist_ok=True)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    archs = args.archs.split(",")
    pending_bases = [a for a in archs if not base_path(a, args).is_file()]
    procs = [subprocess.Popen(_worker_command({"base": a}, argv), env=env)
             for a in pending_bases]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"[bench] base training failed (exit {proc.returncode})")
    todo = [u for u in units(args)
            if finished(u, args) is None]
    total = len(units(args))
    print(f"[bench] {total - len(todo)} of {total} runs done, {len(todo)} to go, "
          f"{args.jobs} workers", flush=True)
    running: list[tuple[subprocess.Popen[bytes], dict[str, Any], float]] = []
    failed = []
    logs = args.out_dir / "logs"
    logs.mkdir(exist_ok=True)
    while todo or running:
        while todo and len(running) < args.jobs:
            u = todo.pop(0)
            log = open(logs / (unit_id(u) + ".log"), "wb")
            running.append((subprocess.Popen(_worker_command(u, argv), env=env, stdout=log,
                                             stderr=subprocess.STDOUT), u, time.time()))
        time.sleep(1.0)
        for item in list(running):
            proc, u, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
            if proc.returncode:
                failed.append(unit_id(u))
            print(f"[bench] {unit_id(u)}: {status} in {time.time() - t0:.0f} s; "
                  f"{len(todo)} queued", flush=True)
    if failed:
        raise SystemExit(f"[bench] {len(failed)} runs failed (logs in {logs}): "
                         f"{', '.join(failed)}")
    return [run for u in units(args) if (run := finished(u, args)) is not None]


# ----------------------------------------------------------------------------- report

def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) \
        if len(values) > 1 else 0.0
    return mean, std


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (arch, sparsity, k): per variant the mean and std over seeds."""
    groups: dict[tuple[str, float, int], dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        key = (r["arch"], r["sparsity"], r["k"])
        groups.setdefault(key, {}).setdefault(r["variant"], []).append(r)
    rows = []
    for (arch, sparsity, k), by_variant in groups.items():
        dense = [r["dense"]["top1"] for rs in by_variant.values() for r in rs]
        row: dict[str, Any] = {"arch": arch, "sparsity": sparsity, "k": k,
                               "dense": _stats(dense)[0], "variants": {}}
        for variant, rs in by_variant.items():
            mean, std = _stats([r["final"]["top1"] for r in rs])
            row["variants"][variant] = {
                "mean": mean, "std": std, "seeds": len(rs),
                "sparsity": _stats([r["sparsity_achieved"] for r in rs])[0],
                "macs": _stats([r["effective_macs"] / r["dense_macs"] for r in rs])[0],
                "passes": rs[0]["budget"]["fine_tune"], "budget": rs[0]["budget"],
                "wall_s": _stats([r["wall_time_s"] for r in rs])[0]}
        rows.append(row)
    rows.sort(key=lambda r: (r["arch"], r["sparsity"], r["k"]))
    return rows


def _cell(v: dict[str, Any] | None, seeds: int = 1) -> str:
    """mean ± std (%); ``(n=…)`` when fewer seeds than asked are in."""
    if v is None:
        return "–"
    short = f" (n={v['seeds']})" if v["seeds"] < seeds else ""
    return f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}{short}"


def verdicts(row: dict[str, Any]) -> dict[str, Any]:
    """The targets this row can tell: CRISP (row-shared, V=4) vs dense, vs every baseline, and
    what V=4 costs against per-row (``v4_gap`` = per-row − V=4)."""
    v = row["variants"]
    out: dict[str, Any] = {}
    crisp = v.get("crisp")
    if crisp is None:
        return out
    out["gap_to_dense"] = row["dense"] - crisp["mean"]
    beaten, ties, ahead, unsure = [], [], [], []
    for name in BASELINES:
        if name not in v:
            continue
        if min(crisp["seeds"], v[name]["seeds"]) < 2:
            unsure.append(name)  # one seed has no spread: no verdict either way
            continue
        diff = crisp["mean"] - v[name]["mean"]
        spread = max(crisp["std"], v[name]["std"])
        (ties if abs(diff) <= spread else beaten if diff > 0 else ahead).append(name)
    out["baselines"] = {"crisp_ahead": beaten, "tie": ties, "crisp_behind": ahead}
    if unsure:
        out["one_seed"] = unsure
    if "crisp-per-row" in v:
        out["v4_gap"] = v["crisp-per-row"]["mean"] - crisp["mean"]
    return out


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, command: str,
             wall: float) -> str:
    rows = summarize(results)
    asked = [n for n in args.variants.split(",") if n]  # every seed: the main columns
    main = [n for n in asked if any(n in r["variants"] for r in rows)]
    extra = [n for n in ABLATIONS if n not in asked and n != "crisp-per-row"  # the reference
             and any(n in r["variants"] for r in rows)]
    one = max(results, key=lambda r: r["k"])
    # Today's budget of such a run (the engine's own count), not a saved run's: runs saved
    # before a change that made the same recipe cheaper list what they spent then.
    from crisp_edge.pruning.engine import budget

    u = {key: one[key] for key in ("arch", "sparsity", "k", "seed")} | {"variant": "crisp"}
    b = budget(prune_config(u, args), one["k"] * args.samples_per_class, True, 0)
    lines = [
        "# Pruning benchmark: CRISP vs dense vs baselines", "",
        f"Synthetic 100-class data, {args.image_size}×{args.image_size}: "
        f"{args.samples_per_class} training renders per class, {args.test_per_class} test "
        f"renders per user class. Pattern {args.nm} in {args.block} blocks. User classes: "
        f"{CLASS_PICKS[args.class_pick]}. Every variant runs the same schedule "
        f"({args.steps} block steps after step 0, {args.epochs_per_step} epoch per step, "
        f"{args.final_epochs} more at the final sparsity, one cosine LR) with the same recovery "
        "(distillation from the dense model, BatchNorm re-estimation after each mask change), "
        f"so the same budget: {b['fine_tune'] // (one['k'] * args.samples_per_class)} "
        "fine-tuning passes over the user's training images "
        f"(k × {args.samples_per_class} images; e.g. k = {one['k']}: {b['fine_tune']} image "
        f"passes forward+backward, {b['teacher_forward']} teacher forwards, "
        f"{b['bn_recalibration']} BatchNorm forwards; the methods that rank by saliency, crisp, "
        f"nm-only and block-only, also make one measuring pass, {b['saliency']} images "
        "forward+backward; each run's JSON lists what it spent). "
        f"Top-1 on the user classes, mean ± std over {args.seeds} seeds (the seed sets the "
        "fine-tuning order; base model and classes are fixed).", "",
        f"Command: `{command}` (" + ("" if args.report else
                                      f"{wall / 60:.0f} min of wall time for the runs not "
                                      "cached; ")
        + f"the runs in the table took {sum(r['wall_time_s'] for r in results) / 3600:.1f} h "
        "of one core in all, several sharing the two cores at a time).", "",
        *([f"**Partial: {args.partial[0]} of the {args.partial[1]} runs are in**; the command "
           "resumes the rest (finished runs are kept in the runs directory). Rows with fewer "
           "seeds than asked say how many they have (n=…); a missing cell is a "
           "run not done yet.", ""] if getattr(args, "partial", None) else []),
        f"Machine: {platform.machine()}, {args.jobs} worker processes × 1 torch thread.", "",
        *base_lines(sorted({r["arch"] for r in results}), args),
        "## Top-1 on the user classes (%)", "",
        "| arch | sparsity | k | dense | " + " | ".join(main) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(main)]
    for r in rows:
        lines.append(f"| {r['arch']} | {100 * r['sparsity']:.0f} % | {r['k']} | "
                     f"{100 * r['dense']:.1f} | "
                     + " | ".join(_cell(r["variants"].get(n), args.seeds) for n in main) + " |")
    lines += ["", "## Achieved sparsity of the prunable layers / effective MACs (% of dense)", "",
              "| arch | sparsity | k | " + " | ".join(main) + " |",
              "|---|---:|---:|" + "---:|" * len(main)]
    for r in rows:
        cells = []
        for n in main:
            v = r["variants"].get(n)
            cells.append("–" if v is None else
                         f"{100 * v['sparsity']:.1f} / {100 * v['macs']:.0f}")
        lines.append(f"| {r['arch']} | {100 * r['sparsity']:.0f} % | {r['k']} | "
                     + " | ".join(cells) + " |")
    # per-row − V=4 only where crisp-per-row ran (--ablations: seed 0; or asked for)
    gap = any("v4_gap" in verdicts(r) for r in rows)
    lines += ["", "## Targets", "",
              "| arch | sparsity | k | CRISP − dense (pt) | CRISP vs baselines (ahead / tie "
              "within one std / behind) |" + (" per-row − V=4 (pt) |" if gap else ""),
              "|---|---:|---:|---:|---|" + ("---:|" if gap else "")]
    for r in rows:
        v = verdicts(r)
        if not v:
            continue
        bl = v["baselines"]
        per_row = r["variants"].get("crisp-per-row")
        few = f" (n={per_row['seeds']})" if per_row and per_row["seeds"] < args.seeds else ""
        lines.append(f"| {r['arch']} | {100 * r['sparsity']:.0f} % | {r['k']} | "
                     f"{0.0 - 100 * v['gap_to_dense']:+.1f} | {', '.join(bl['crisp_ahead']) or '–'} / "
                     f"{', '.join(bl['tie']) or '–'} / {', '.join(bl['crisp_behind']) or '–'}"
                     + (f" (one seed, no verdict yet: {', '.join(v['one_seed'])})"
                        if v.get("one_seed") else "") + " |"
                     + ((f" {100 * v['v4_gap'] + 0.0:+.1f}{few} |" if "v4_gap" in v else " – |")
                        if gap else ""))
    if extra:
        lines += ["", "## Ablations (seed 0; one setting changed from `crisp-per-row`)", "",
                  "| arch | sparsity | k | crisp-per-row | " + " | ".join(extra) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(extra)]
        for r in rows:
            if not any(n in r["variants"] for n in extra):
                continue
            seed0 = {n: next((x for x in results if x["arch"] == r["arch"] and x["sparsity"]
                              == r["sparsity"] and x["k"] == r["k"] and x["variant"] == n
                              and x["seed"] == 0), None) for n in ["crisp-per-row", *extra]}
            lines.append(f"| {r['arch']} | {100 * r['sparsity']:.0f} % | {r['k']} | " + " | ".join(
                "–" if x is None else f"{100 * x['final']['top1']:.1f}"
                for x in seed0.values()) + " |")
        lines += ["", "Variants: " + "; ".join(
            f"`{n}` = " + ("" if ALL_VARIANTS[n][0] == "crisp" else f"{ALL_VARIANTS[n][0]} ")
            + f"{ALL_VARIANTS[n][1]}" for n in extra) + "."]
    lines += ["", "## Wall time per run (s, mean over seeds)", "",
              "| arch | sparsity | k | " + " | ".join(main) + " |",
              "|---|---:|---:|" + "---:|" * len(main)]
    for r in rows:
        lines.append(f"| {r['arch']} | {100 * r['sparsity']:.0f} % | {r['k']} | " + " | ".join(
            "–" if n not in r["variants"] else f"{r['variants'][n]['wall_s']:.0f}"
            for n in main) + " |")
    lines += ["", f"Per-run results (every layer's density, the budget, the config): "
              f"`{_rel(args.runs_dir)}/*.json`.", ""]
    return "\n".join(lines)


def base_lines(archs: list[str], args: argparse.Namespace) -> list[str]:
    """The base models' section: accuracy on all 100 classes and training time."""
    from crisp_edge.models.checkpoint import load_checkpoint

    lines = ["## Base models (all 100 classes, 30 test renders per class)", "",
             f"Trained by this script: {args.epochs} epochs, lr {args.base_lr}, batch 128, "
             f"{args.samples_per_class} renders per class.", "",
             "| arch | test top-1 | test top-5 | training time | sha256 |",
             "|---|---:|---:|---:|---|"]
    for arch in archs:
        path = base_path(arch, args)
        if not path.is_file():
            lines.append(f"| {arch} | – | – | – | (not on this machine) |")
            continue
        report = load_checkpoint(path).report
        final = report["final"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        lines.append(f"| {arch} | {100 * final['top1']:.1f} % | {100 * final['top5']:.1f} % | "
                     f"{report['wall_time_s'] / 60:.0f} min | {digest}… |")
    return lines + [""]


def _rel(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def main(argv: list[str] | None = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    args = parse_args(argv)
    if args.unit:
        u = json.loads(args.unit)
        if "base" in u:
            train_base(u["base"], args)
        else:
            run_unit(u, args)
        return 0
    command = "python bench/prune_bench.py " + " ".join(shlex.quote(a) for a in argv
                                                         if a != "--report")
    started = time.perf_counter()
    if args.report:
        planned = units(args)
        results = [run for u in planned if (run := finished(u, args)) is not None]
        if not results:
            raise SystemExit(f"[bench] no finished runs in {args.runs_dir}")
        if len(results) < len(planned):
            args.partial = (len(results), len(planned))
    else:
        results = run_all(args, argv)
    wall = time.perf_counter() - started
    summary = {"rows": summarize(results), "runs": results, "wall_time_s": wall,
               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "command": command.strip()}
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(markdown(results, args, command.strip(), wall), encoding="utf-8")
    args.doc.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"[bench] wrote {args.doc} and {args.doc.with_suffix('.json')} ({wall:.0f} s)",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
