"""crisp int8 against ONNX Runtime's statically quantized model (issue 16): for each
architecture, the dense zoo model (seed 0) is packed int8 by crisp and quantized by
``onnxruntime.quantization.quantize_static`` (QDQ, per-channel symmetric int8 weights, int8
activations) from the same calibration images; both run beside their float32 versions and the
hybrid int8 @90 % model of bench/int8_bench.py, in one process, on the same input, timed in
interleaved rounds (1 thread) or alternating blocks (more). TFLite (the LiteRT interpreter and
its XNNPACK delegate) runs too when the `peers` extra is installed: float32 converted by
litert-torch, int8 by litert-torch's PT2E quantizer (per-channel symmetric weights, int8
activations) calibrated on the same images. Prints median latencies and each system's speed-up
over the fastest float32 dense system.

    python bench/int8_peer_bench.py [--archs resnet50,mobilenet_v2] [--threads 1,2]
                                    [--runs 30] [--workdir bench-results/int8]
                                    [--out docs/int8-peers.md]

``--out`` writes the table as Markdown and every timing as JSON beside it (``make bench`` runs
this after the float32 peer benchmark).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_IMAGES = 8


def calibration_images() -> np.ndarray:
    """The images both quantizers calibrate on (bench/int8_bench.py uses the same)."""
    return np.random.default_rng(1).standard_normal(
        (CALIBRATION_IMAGES, 3, 224, 224)).astype(np.float32)


def build(arch: str, workdir: Path) -> dict[str, Path]:
    """crisp fp32/int8 dense files and ONNX fp32/QDQ-int8 files of the same model."""
    import torch

    import crisp_edge.models.zoo as zoo
    from crisp_edge.packing.pack import pack

    paths = {"crisp fp32": workdir / f"{arch}-dense.crisp",
             "crisp int8": workdir / f"{arch}-dense-int8.crisp",
             "ort fp32": workdir / f"{arch}-dense.onnx",
             "ort int8": workdir / f"{arch}-dense-qdq.onnx"}
    if all(p.is_file() for p in paths.values()):
        return paths
    torch.manual_seed(0)
    model = getattr(zoo, arch)(num_classes=1000).eval()
    example = torch.zeros(1, 3, 224, 224)
    cal = calibration_images()
    if not paths["crisp fp32"].is_file():
        pack(model, example, paths["crisp fp32"])
    if not paths["crisp int8"].is_file():
        pack(model, example, paths["crisp int8"], int8=True, calibration=torch.from_numpy(cal))
    if not paths["ort fp32"].is_file():
        torch.onnx.export(model, (example,), str(paths["ort fp32"]), input_names=["x"],
                          output_names=["y"], dynamo=False, opset_version=17)
    if not paths["ort int8"].is_file():
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.images = iter(cal[i:i + 1] for i in range(len(cal)))

            def get_next(self) -> dict[str, np.ndarray] | None:
                image = next(self.images, None)
                return None if image is None else {"x": image}

        prepared = workdir / f"{arch}-dense-prep.onnx"
        quant_pre_process(str(paths["ort fp32"]), str(prepared))
        # ORT's recommended CPU configuration: QDQ, int8 activations and per-channel int8
        # weights (the crisp file's scheme: per-channel symmetric weights, per-tensor
        # activations).
        quantize_static(str(prepared), str(paths["ort int8"]), Reader(),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
    return paths


def tflite_int8(arch: str, workdir: Path, threads: int, x: np.ndarray) -> Any:
    """TFLite's statically quantized model of the same weights, as a callable on ``x``; None
    when litert-torch or the LiteRT interpreter is not installed. The converter gives the
    .tflite int8 input and output tensors, so ``x`` is quantized once here with the input's
    scale and zero point (crisp's int8 model quantizes its float input inside the timed call:
    one pass over 150 K values, ≈ 0.05 ms)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        print(f"  TFLite skipped: {e}; pip install '.[peers]'", flush=True)
        return None
    path = workdir / f"{arch}-dense-int8.tflite"
    if not path.is_file():
        import torch
        try:
            import litert_torch
            from litert_torch.quantize import pt2e_quantizer
            from litert_torch.quantize.quant_config import QuantConfig
            from torchao.quantization.pt2e import quantize_pt2e
        except ImportError as e:
            print(f"  TFLite int8 skipped: {e}; pip install '.[peers]'", flush=True)
            return None
        import crisp_edge.models.zoo as zoo

        torch.manual_seed(0)
        model = getattr(zoo, arch)(num_classes=1000).eval()
        example = (torch.zeros(1, 3, 224, 224),)
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True,
                                                             is_dynamic=False))
        graph = quantize_pt2e.prepare_pt2e(torch.export.export(model, example).module(),
                                           quantizer)
        cal = calibration_images()
        with torch.no_grad():
            for i in range(len(cal)):
                graph(torch.from_numpy(cal[i:i + 1]))
        graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
        litert_torch.convert(graph, example, quant_config=QuantConfig(
            pt2e_quantizer=quantizer)).export(str(path))
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    q = np.clip(np.round(x / scale) + zero, -128, 127).astype(inp["dtype"]) if scale else x

    def run() -> Any:
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        return interp.get_tensor(out["index"])
    return run


def ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    import importlib.util

    from crisp_edge import runtime
    from crisp_edge.measure.peerbench import (PeerUnavailableError, System, summary,
                                              time_blocks, time_interleaved, tflite_peer)

    spec = importlib.util.spec_from_file_location("int8_bench", Path(__file__).with_name(
        "int8_bench.py"))
    assert spec is not None and spec.loader is not None
    int8_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(int8_bench)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="resnet50,mobilenet_v2")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=Path("bench-results/int8"))
    p.add_argument("--out", type=Path, default=None,
                   help="Markdown report (and .json beside it); default: print only")
    a = p.parse_args()
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    a.workdir.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for arch in a.archs.split(","):
        paths = build(arch, a.workdir)
        _, hybrid = int8_bench.build(arch, 0.9, 4, a.workdir)
        for threads in (int(t) for t in a.threads.split(",")):
            models = {name: runtime.load(paths[name], threads=threads)
                      for name in ("crisp fp32", "crisp int8")}
            models["crisp int8 @90 % V=4"] = runtime.load(hybrid, threads=threads)
            sessions = {name: ort_session(paths[name], threads) for name in ("ort fp32",
                                                                              "ort int8")}
            systems = [System(n, lambda m=m: m.run(x)) for n, m in models.items()]
            systems += [System(n, lambda s=s: s.run(None, {"x": x})) for n, s in sessions.items()]
            try:
                import torch

                import crisp_edge.models.zoo as zoo
                torch.manual_seed(0)
                dense = getattr(zoo, arch)(num_classes=1000).eval()
                systems.append(System("tflite fp32", tflite_peer(dense, x, threads, a.workdir,
                                                                 f"{arch}-dense")))
            except PeerUnavailableError as e:
                print(f"  TFLite fp32 skipped: {e}", flush=True)
            tfl8 = tflite_int8(arch, a.workdir, threads, x)
            if tfl8 is not None:
                systems.append(System("tflite int8", tfl8))
            (time_blocks if threads > 1 else time_interleaved)(systems, a.warmup, a.runs)
            times = {s.name: summary(s.times_ms) for s in systems}
            rows.append({"arch": arch, "threads": threads, "systems": times})
            med = {name: t["median_ms"] for name, t in times.items()}
            fastest_fp32 = min(ms for name, ms in med.items() if "fp32" in name)
            print(f"{arch}, {threads} thread(s); × = fastest fp32 dense "
                  f"({fastest_fp32:.2f} ms) / system", flush=True)
            for name, ms in med.items():
                print(f"  {name:24} {ms:9.2f} ms  {fastest_fp32 / ms:5.2f}×", flush=True)
    if a.out is not None:
        command = "python bench/int8_peer_bench.py " + " ".join(sys.argv[1:])
        results = {"command": command, "machine": platform.machine(), "rows": rows,
                   "wall_time_s": time.monotonic() - started, "versions": versions()}
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        a.out.write_text(markdown(results))
        print(f"wrote {a.out} and {a.out.with_suffix('.json')}", flush=True)


# The columns of the report, in order: (system name in the rows, column title).
COLUMNS = (("crisp fp32", "crisp fp32"), ("ort fp32", "ORT fp32"), ("tflite fp32", "TFLite fp32"),
           ("ort int8", "ORT int8"), ("tflite int8", "TFLite int8"), ("crisp int8", "crisp int8"),
           ("crisp int8 @90 % V=4", "crisp int8 @90 % V=4"))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("crisp-edge", "onnxruntime", "ai-edge-litert", "litert-torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def markdown(results: dict[str, Any]) -> str:
    """The table: each cell median (p90) ms and × = the fastest float32 dense system's median
    over this one's."""
    lines = ["# int8 against the peers' int8 and float32 (generated)", "",
             "Written by `bench/int8_peer_bench.py` (`make bench`); the reading is in "
             "[int8-benchmark.md](int8-benchmark.md).", "",
             f"Command: `{results['command']}`", "",
             f"Machine: {results['machine']}; " + ", ".join(
                 f"{k} {v}" for k, v in results["versions"].items()) + ".", "",
             "Batch 1, 224×224, the same input for every system, timed in one process "
             "(interleaved single calls at 1 thread, back-to-back blocks in two passes of "
             "opposite order at more). Cell: median (p90) ms, and × = the fastest float32 "
             "dense system's median / this system's. Dense models are the zoo's (seed 0); "
             "`crisp int8 @90 % V=4` is bench/int8_bench.py's hybrid model. TFLite's int8 model "
             "takes and returns int8 tensors (its converter's choice), so its input is "
             "quantized once outside the timed call; crisp's int8 model quantizes inside it.",
             "", "| model | threads | " + " | ".join(t for _, t in COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for r in results["rows"]:
        times = r["systems"]
        fastest = min(t["median_ms"] for n, t in times.items() if "fp32" in n)
        cells = []
        for name, _ in COLUMNS:
            t = times.get(name)
            cells.append("–" if t is None else f"{t['median_ms']:.2f} ({t['p90_ms']:.2f}) "
                         f"{fastest / t['median_ms']:.2f}×")
        lines.append(f"| {r['arch']} | {r['threads']} | " + " | ".join(cells) + " |")
    lines += ["", f"Total benchmark time: {results['wall_time_s']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
