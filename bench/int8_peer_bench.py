"""crisp int8 against ONNX Runtime's statically quantized model (issue 16): for each
architecture, the dense zoo model (seed 0) is packed int8 by crisp and quantized by
``onnxruntime.quantization.quantize_static`` (QDQ, per-channel symmetric int8 weights, int8
activations) from the same calibration images; both run beside their float32 versions and the
hybrid int8 @90 % model of bench/int8_bench.py, in one process, on the same input, timed in
interleaved rounds (1 thread) or alternating blocks (more). Prints median latencies and each
system's speed-up over the fastest float32 dense system (ONNX Runtime or crisp).

    python bench/int8_peer_bench.py [--archs resnet50,mobilenet_v2] [--threads 1,2]
                                    [--runs 30] [--workdir bench-results/int8]
"""

from __future__ import annotations

import argparse
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
    from crisp_edge.measure.peerbench import System, summary, time_blocks, time_interleaved

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
    a = p.parse_args()
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
            (time_blocks if threads > 1 else time_interleaved)(systems, a.warmup, a.runs)
            med = {s.name: summary(s.times_ms)["median_ms"] for s in systems}
            fastest_fp32 = min(med["crisp fp32"], med["ort fp32"])
            print(f"{arch}, {threads} thread(s); × = fastest fp32 dense "
                  f"({fastest_fp32:.2f} ms) / system", flush=True)
            for name, ms in med.items():
                print(f"  {name:24} {ms:9.2f} ms  {fastest_fp32 / ms:5.2f}×", flush=True)


if __name__ == "__main__":
    main()
