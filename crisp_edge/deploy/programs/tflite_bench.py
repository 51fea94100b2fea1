import importlib, json, sys, time
path, threads = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
warmup, runs = int(sys.argv[3]), int(sys.argv[4])
Interpreter = module = None
for name in ("tflite_runtime.interpreter", "ai_edge_litert.interpreter"):
    try:
        Interpreter, module = importlib.import_module(name).Interpreter, name
        break
    except ImportError:
        pass
if Interpreter is None:
    print(json.dumps({"available": False, "reason": "neither tflite-runtime nor ai-edge-litert "
                      "is installed for python3 on the device"}))
    sys.exit(0)
if path == "-":
    print(json.dumps({"available": True, "module": module, "benchmarked": False,
                      "reason": "no --tflite model given"}))
    sys.exit(0)
import numpy as np
results = []
for t in threads:
    it = Interpreter(model_path=path, num_threads=t)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    rng = np.random.default_rng(1)
    if np.issubdtype(d["dtype"], np.floating):
        x = rng.uniform(-1, 1, d["shape"]).astype(d["dtype"])
    else:
        x = rng.integers(-128, 127, d["shape"]).astype(d["dtype"])
    it.set_tensor(d["index"], x)
    for _ in range(warmup):
        it.invoke()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    rank = lambda p: ms[max(1, -(-len(ms) * p // 100)) - 1]
    median = ms[len(ms) // 2] if len(ms) % 2 else (ms[len(ms) // 2 - 1] + ms[len(ms) // 2]) / 2
    results.append({"threads": t, "median_ms": median, "p90_ms": rank(90), "p99_ms": rank(99),
                    "min_ms": ms[0], "throughput_ips": 1e3 * len(ms) / sum(ms)})
print(json.dumps({"available": True, "module": module, "benchmarked": True,
                  "model": path.rsplit("/", 1)[-1], "results": results}))
