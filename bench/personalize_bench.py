"""`make bench-personalize`: on-device re-personalisation against its targets (docs/personalize.md).

A CIFAR-size ResNet-18 is trained on the first half of synthetic:100's classes (synthetic:50:
the first 50 classes of synthetic:100 are the same classes), pruned to 90 % for 3 of them with
the default recipe, and packed fp32 (its preprocessing stored). Then, as a board would:

- **Learn**: 5 classes the base model never saw (ids 50 … 54), 20 training images each, written
  as PNG files and given to the C tool `crisp-personalize --images DIR`. Top-1 on 100 held-out
  images per class (PNG files, decoded by the runtime) against a host-side torch logistic
  regression (L-BFGS, the same objective and L2) on the same features of the same images.
- **Speed and memory**: the tool end to end (decode, features, fit, write) at 2 threads,
  median of 5 runs, and its peak RSS against file + arena + features + 16 MB.
- **Threads**: the head written at 1, 2 and 3 threads is bitwise identical.
- **Re-select**: a `--keep-head` pruning of the same base, re-selected on the device to 3 other
  classes, against a model packed on the host from the same pruned weights with the head rows
  sliced: logits equal within 1e-5 relative.
- Under qemu (cortex-a72) for information, when an aarch64 build exists.

Models are cached in OUT_DIR by their settings; the report goes to docs/personalize-benchmark.md.

    python bench/personalize_bench.py            # ≈ 30 min on one core the first time
    python bench/personalize_bench.py --quick    # minutes: proves the pipeline works
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ARCH = "resnet18_cifar"
BASE_DATA = "synthetic:50"
FULL_DATA = "synthetic:100"
PRUNE_CLASSES = [0, 1, 2]
NEW_CLASSES = [50, 51, 52, 53, 54]
RESELECT_CLASSES = [7, 21, 40]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench-results" / "personalize")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "personalize-benchmark.md")
    ap.add_argument("--tool", type=Path, default=None,
                    help="crisp-personalize to time [default: build/native's]")
    ap.add_argument("--qemu-tool", type=Path, default=None,
                    help="an aarch64 crisp-personalize to run under qemu [default: "
                         "build/aarch64's, when present]")
    ap.add_argument("--no-qemu", action="store_true", help="skip the qemu run (minutes)")
    ap.add_argument("--samples-per-class", type=int, default=40, help="base training renders")
    ap.add_argument("--epochs", type=int, default=8, help="base training epochs")
    ap.add_argument("--train-images", type=int, default=20, help="images per new class")
    ap.add_argument("--test-images", type=int, default=100, help="held-out images per class")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of the tool")
    ap.add_argument("--quick", action="store_true",
                    help="tiny scale: 1 base epoch, 8 renders a class, 20 test images, 2 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples_per_class, args.epochs, args.test_images, args.runs = 8, 1, 20, 2
        args.out_dir = args.out_dir.with_name(args.out_dir.name + "-quick")
        args.doc = args.out_dir / "personalize-benchmark.md"
    build = REPO / "build"
    if args.tool is None:
        args.tool = _find(build / "native", "crisp-personalize")
    if args.qemu_tool is None:
        args.qemu_tool = _find(build / "aarch64", "crisp-personalize")
    return args


def _find(root: Path, name: str) -> Path | None:
    hits = sorted(p for p in root.rglob(name) if p.is_file() and os.access(p, os.X_OK)) \
        if root.is_dir() else []
    return hits[0] if hits else None


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


# --- models ----------------------------------------------------------------------------------

def base_model(args: argparse.Namespace) -> Path:
    from crisp_edge.pruning.runs import run_train
    from crisp_edge.pruning.training import TrainConfig

    config = TrainConfig(epochs=args.epochs, lr=0.05, batch_size=128)
    path = args.out_dir / f"base-{_key(ARCH, BASE_DATA, args.samples_per_class, config.to_dict())}.pt"
    if not path.is_file():
        print(f"[bench] training the base model on {BASE_DATA} → {path}", flush=True)
        run_train(arch=ARCH, model_source=None, data=BASE_DATA, out=path, config=config,
                  image_size=32, samples_per_class=args.samples_per_class, progress=False)
    return path


def pruned_model(args: argparse.Namespace, base: Path, keep_head: bool) -> Path:
    from crisp_edge.pruning.engine import PruneConfig
    from crisp_edge.pruning.runs import run_prune

    config = PruneConfig(sparsity=0.9, keep_head=keep_head, image_size=32,
                         samples_per_class=args.samples_per_class,
                         test_samples_per_class=args.test_images, eval_steps=False)
    name = "pruned-keephead" if keep_head else "pruned"
    path = args.out_dir / f"{name}-{_key(base.name, config.to_dict(), PRUNE_CLASSES)}.pt"
    if not path.is_file():
        print(f"[bench] pruning to 90 % for classes {PRUNE_CLASSES} (keep_head={keep_head})",
              flush=True)
        run_prune(arch=ARCH, model_source=None, weights=base, data=BASE_DATA,
                  classes=",".join(map(str, PRUNE_CLASSES)), config=config, out=path,
                  report_dir=args.out_dir / "reports", progress=False)
    return path


def packed(ckpt: Path) -> Path:
    from crisp_edge.packing.pack import pack_checkpoint

    out = ckpt.with_suffix(".crisp")
    if not out.is_file() or out.stat().st_mtime < ckpt.stat().st_mtime:
        pack_checkpoint(ckpt, out)
    return out


# --- images ----------------------------------------------------------------------------------

def write_pngs(root: Path, split: str, classes: list[int], count: int) -> Path:
    """Renders of ``classes`` as 8-bit PNG files, ``root/split/<class name>/i.png``: what a
    user would copy to the board."""
    from PIL import Image

    from crisp_edge.data.synthetic import MEAN, STD, class_names, render_synthetic_sample

    out = root / split
    names = class_names(100)
    mean, std = np.array(MEAN, np.float32)[:, None, None], np.array(STD, np.float32)[:, None, None]
    for c in classes:
        d = out / names[c]
        if d.is_dir() and len(list(d.glob("*.png"))) == count:
            continue
        d.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            x = render_synthetic_sample(c, i, 32, 0, split) * std + mean
            pixels = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
            Image.fromarray(pixels).save(d / f"{i:04d}.png")
    return out


def load_folder(model: Any, root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = sorted(d.name for d in root.iterdir() if d.is_dir())
    xs, ys = [], []
    for k, name in enumerate(names):
        for f in sorted((root / name).glob("*.png")):
            xs.append(model.load_image(f))
            ys.append(k)
    return np.stack(xs), np.array(ys, np.int64), names


# --- the host baseline -----------------------------------------------------------------------

def torch_logistic_regression(x: np.ndarray, y: np.ndarray, classes: int, l2: float,
                              iterations: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression on ``x`` with L-BFGS: mean cross-entropy + l2/2 ‖W‖² (b not
    penalised), the objective the runtime's fit minimises (runtime/README.md)."""
    import torch

    torch.manual_seed(0)
    xt = torch.from_numpy(x.astype(np.float64))
    yt = torch.from_numpy(y)
    mu, sd = xt.mean(0), xt.std(0).clamp_min(1e-6)
    z = (xt - mu) / sd  # conditioning only: folded back below
    w = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iterations, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        w_raw = w / sd
        loss = torch.nn.functional.cross_entropy(z @ w.T + b, yt) + 0.5 * l2 * (w_raw ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        w_raw = (w / sd).numpy()
        b_raw = (b - (w / sd) @ mu).numpy()
    return w_raw.astype(np.float32), b_raw.astype(np.float32)


# --- the tool --------------------------------------------------------------------------------

GNU_TIME = "/usr/bin/time"
TIME_MARK = "crisp-bench-time:"


def run_tool(argv: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in KiB of the tool alone, its stdout+stderr). The RSS comes
    from GNU time, which execs the tool from a small process: a child forked from this
    Python would report this process's pages (torch included) as its own high-water mark."""
    timed = [GNU_TIME, "-f", f"{TIME_MARK} %M %U %S", *argv] if os.path.exists(GNU_TIME) \
        else argv
    start = time.perf_counter()
    done = subprocess.run(timed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    out = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{out}")
    rss, lines = -1, []
    for line in out.splitlines():
        if line.startswith(TIME_MARK):
            rss = int(line.split()[1])
            cpu = float(line.split()[2]) + float(line.split()[3])
            lines.append(f"(cpu {cpu:.2f} s)")
        else:
            lines.append(line)
    return wall, rss, "\n".join(lines)


def head_bytes(path: Path) -> bytes:
    from crisp_edge.format.read import read_model

    from crisp_edge.runtime import load

    with load(path) as m:
        op = read_model(path).graph.ops[m.head()["op"]]
    tensors = read_model(path).graph.tensors
    parts = [tensors[op.weight].payload()]
    if op.bias is not None:
        parts.append(tensors[op.bias].payload())
    return b"".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    from crisp_edge.runtime import kernel_isa, load

    base = base_model(args)
    model_path = packed(pruned_model(args, base, keep_head=False))
    full_path = packed(pruned_model(args, base, keep_head=True))
    if args.tool is None:
        print("[bench] crisp-personalize not built: run `make build-native` first", flush=True)
        return 1
    images = args.out_dir / "images"
    train_dir = write_pngs(images, "train", NEW_CLASSES, args.train_images)
    test_dir = write_pngs(images, "test", NEW_CLASSES, args.test_images)
    results: dict[str, Any] = {"machine": platform.machine(), "cpu": _cpu(),
                               "isa": kernel_isa(), "model": str(model_path.name)}

    # Learn, on the device's code path: the tool, at 2 threads, timed.
    out = args.out_dir / "personalized.crisp"
    tool = [str(args.tool), str(model_path), "--images", str(train_dir), "--out", str(out),
            "--threads", "2"]
    runs = [run_tool(tool) for _ in range(args.runs)]
    walls, rss = [r[0] for r in runs], max(r[1] for r in runs)
    cpus = [float(r[2].rsplit("(cpu ", 1)[1].split()[0]) for r in runs if "(cpu " in r[2]]
    with load(model_path) as m:
        info = m.info()
        head = m.head()
        x_train, y_train, names = load_folder(m, train_dir)
        x_test, y_test, _ = load_folder(m, test_dir)
        f_train, f_test = m.features(x_train), m.features(x_test)
    feature_bytes = f_train.nbytes
    bound_kb = (info["file_bytes"] + info["arena_bytes"] + feature_bytes) / 1024 + 16 * 1024
    with load(out) as p:
        device_top1 = float((p.run(x_test).argmax(1) == y_test).mean())
        prov = p.info()["provenance"].get("personalized", {})
    l2 = float(prov.get("fit", {}).get("l2") or 1e-3)
    w, b = torch_logistic_regression(f_train, y_train, len(names), l2)
    host_top1 = float(((f_test @ w.T + b).argmax(1) == y_test).mean())
    results["learn"] = {
        "classes": names, "train_images": int(len(y_train)), "test_images": int(len(y_test)),
        "device_top1": device_top1, "host_logreg_top1": host_top1, "l2": l2,
        "met": device_top1 >= host_top1 - 0.01, "tool_output": runs[-1][2].strip()}
    results["speed"] = {
        "threads": 2, "runs": args.runs, "median_s": statistics.median(walls),
        "min_s": min(walls), "target_s": 2.0, "met_time": statistics.median(walls) <= 2.0,
        "median_cpu_s": statistics.median(cpus) if cpus else None,
        "peak_rss_kb": rss, "bound_kb": bound_kb, "met_rss": rss <= bound_kb,
        "file_bytes": info["file_bytes"], "arena_bytes": info["arena_bytes"],
        "feature_bytes": feature_bytes, "features": head["features"]}

    # --tune bias beside head-only: the defaults, timed, and a small sweep of lr × epochs.
    def tuned_top1(extra: list[str], name: str) -> tuple[float, float]:
        path = args.out_dir / name
        wall, _, _ = run_tool(tool[:5] + [str(path), "--threads", "2", "--tune", "bias",
                                          *extra])
        with load(path) as p:
            return float((p.run(x_test).argmax(1) == y_test).mean()), wall

    top1, wall = tuned_top1([], "tuned.crisp")
    sweep = {}
    for lr in ("1e-3", "3e-3", "1e-2"):
        for epochs in ("5", "10", "20"):
            sweep[f"lr {lr}, {epochs} epochs"] = tuned_top1(["--lr", lr, "--epochs", epochs],
                                                            "tuned-sweep.crisp")[0]
    results["tune_bias"] = {"top1": top1, "wall_s": wall, "sweep": sweep}

    # Threads: the same head at 1, 2 and 3 threads.
    heads = {}
    for t in (1, 2, 3):
        path = args.out_dir / f"personalized-t{t}.crisp"
        run_tool([str(args.tool), str(model_path), "--images", str(train_dir), "--out",
                  str(path), "--threads", str(t)])
        heads[t] = hashlib.sha256(head_bytes(path)).hexdigest()
    results["threads"] = {"heads": heads, "identical": len(set(heads.values())) == 1}

    # Re-select against a host-packed model of the same pruned weights.
    results["reselect"] = reselect(args, full_path, x_test)

    # qemu, for information.
    if args.qemu_tool is not None and shutil.which("qemu-aarch64") and not args.no_qemu:
        qemu = ["qemu-aarch64", "-cpu", "cortex-a72", "-L", "/usr/aarch64-linux-gnu",
                str(args.qemu_tool), str(model_path), "--images", str(train_dir), "--out",
                str(args.out_dir / "personalized-qemu.crisp"), "--threads", "2"]
        wall, _, _ = run_tool(qemu)
        results["qemu"] = {"cpu": "cortex-a72", "wall_s": wall,
                           "head_equal_to_native": head_bytes(args.out_dir /
                                                              "personalized-qemu.crisp")
                           == head_bytes(out)}
    (args.out_dir / "personalize-benchmark.json").write_text(json.dumps(results, indent=2))
    write_doc(args, results)
    print(json.dumps({k: v for k, v in results.items() if k != "learn"}, indent=2))
    print(f"[bench] learn: device {100 * device_top1:.1f} % vs host {100 * host_top1:.1f} %")
    return 0


def reselect(args: argparse.Namespace, full_path: Path, x: np.ndarray) -> dict[str, Any]:
    import torch

    from crisp_edge.models.checkpoint import build_model_from_checkpoint, load_checkpoint
    from crisp_edge.packing.pack import pack
    from crisp_edge.runtime import load

    out = args.out_dir / "reselected.crisp"
    classes = ",".join(map(str, RESELECT_CLASSES))
    _, _, text = run_tool([str(args.tool), str(full_path), "--classes", classes, "--out",
                           str(out)])
    ckpt_path = full_path.with_suffix(".pt")
    ckpt = load_checkpoint(ckpt_path)
    model = build_model_from_checkpoint(ckpt, arch=ARCH, path=ckpt_path).eval()
    fc = model.fc
    rows = torch.tensor(RESELECT_CLASSES)
    sliced = torch.nn.Linear(fc.in_features, len(rows))
    with torch.no_grad():
        sliced.weight.copy_(fc.weight[rows])
        sliced.bias.copy_(fc.bias[rows])
    model.fc = sliced
    host = args.out_dir / "reselected-host.crisp"
    masks = {**ckpt.masks, "fc.weight": ckpt.masks["fc.weight"][rows]} \
        if "fc.weight" in ckpt.masks else ckpt.masks
    pack(model, torch.zeros(2, 3, 32, 32), host, masks=masks, pattern=ckpt.pattern,
         layers=ckpt.layers, pattern_mode="checkpoint")
    with load(out) as a, load(host) as b:
        la, lb = a.run(x[:64]), b.run(x[:64])
        labels = [name for _, name in a.labels]
    rel = float(np.abs(la - lb).max() / max(np.abs(lb).max(), 1e-30))
    return {"classes": RESELECT_CLASSES, "labels": labels, "max_rel_diff": rel,
            "met": rel <= 1e-5, "tool_output": text.strip()}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_doc(args: argparse.Namespace, r: dict[str, Any]) -> None:
    learn, speed, threads, rs = r["learn"], r["speed"], r["threads"], r["reselect"]
    ok = lambda met: "met" if met else "**missed**"  # noqa: E731
    lines = [
        "# On-device re-personalisation: the benchmark", "",
        "Measured with `make bench-personalize` (`python bench/personalize_bench.py`) on "
        f"{r['cpu']} ({r['machine']}, kernels {r['isa']}). The setup is in the script's "
        "docstring: ResNet-18-CIFAR trained on synthetic:50, pruned to 90 % for classes "
        f"{PRUNE_CLASSES}, then personalised by the C tool `crisp-personalize` to "
        f"{len(NEW_CLASSES)} classes it never saw ({', '.join(learn['classes'])}).", "",
        "| target | measured | goal | |", "|---|---|---|---|",
        f"| learn: top-1 on {learn['test_images']} held-out images | "
        f"{100 * learn['device_top1']:.1f} % (host torch logistic regression on the same "
        f"features: {100 * learn['host_logreg_top1']:.1f} %) | ≥ host − 1 pt | "
        f"{ok(learn['met'])} |",
        f"| end to end, {learn['train_images']} images, {speed['threads']} threads (median of "
        f"{speed['runs']}) | {speed['median_s']:.3f} s wall, "
        f"{speed['median_cpu_s'] or float('nan'):.3f} s CPU | ≤ 2 s | {ok(speed['met_time'])} |",
        f"| peak RSS | {speed['peak_rss_kb'] / 1024:.1f} MiB | ≤ file + arena + features + "
        f"16 MiB = {speed['bound_kb'] / 1024:.1f} MiB | {ok(speed['met_rss'])} |",
        f"| head at 1, 2, 3 threads | {'identical' if threads['identical'] else 'different'} "
        f"| bitwise identical | {ok(threads['identical'])} |",
        f"| re-select {rs['labels']} vs host-packed | max rel. diff {rs['max_rel_diff']:.2e} "
        f"| ≤ 1e-5 | {ok(rs['met'])} |",
    ]
    if "qemu" in r:
        q = r["qemu"]
        lines += [f"| under qemu {q['cpu']} (information only) | {q['wall_s']:.2f} s, head "
                  f"{'equal to' if q['head_equal_to_native'] else 'different from'} native "
                  "(NEON and AVX kernels sum in other orders, so the features differ in the "
                  "last bits) | — | |"]
    tb = r["tune_bias"]
    lines += ["", f"`--tune bias` (the last stage's biases and the head, defaults): top-1 "
              f"{100 * tb['top1']:.1f} % beside head-only {100 * learn['device_top1']:.1f} %, "
              f"{tb['wall_s']:.2f} s end to end at 2 threads. Over learning rate × epochs:", "",
              "| setting | top-1 |", "|---|---:|"]
    lines += [f"| {k} | {100 * v:.1f} % |" for k, v in tb["sweep"].items()]
    lines += ["", "The tool's own report of the timed run:", "", "```",
              learn["tool_output"], "```", ""]
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text("\n".join(lines))
    print(f"[bench] wrote {args.doc}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
