#!/usr/bin/env bash
# `make test-wheel` (issue 17): the new user's path, from the built wheel alone. Builds the wheel,
# installs it with the `deploy` extra into a fresh venv (numpy, cffi, click, ziglang: no torch),
# lists the board profiles, deploys three test models to a file for rpi4 with the zig
# toolchain, unpacks the bundle and runs its static crisp-run under qemu-aarch64 -cpu cortex-a72:
# logits within 1e-4 x their scale of the installed package's host runtime, same top-1.
#
# Run from the repository root. Environment:
#   PY      the development Python with scikit-build-core (default .venv/bin/python)
#   WORK    scratch directory (default build/test-wheel; the zig board build is kept in
#           WORK/cache between runs, and zig's own cache in ~/.cache/zig, so a re-run only
#           checks that they are up to date)
set -euo pipefail

PY="${PY:-.venv/bin/python}"
WORK="${WORK:-build/test-wheel}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
DATA="$PWD/runtime/tests/data"
started=$(date -u +%s)
step() { echo "test-wheel [$(( $(date -u +%s) - started )) s]: $*"; }

step "building the wheel"
rm -rf "$WORK/dist" "$WORK/venv" "$WORK/bundle"
"$PY" -m pip wheel . --no-deps --no-build-isolation -q -w "$WORK/dist"
wheel=$(ls "$WORK"/dist/crisp_edge-*.whl)

step "installing $(basename "$wheel")[deploy] into a fresh venv"
# The venv comes from the base interpreter, not from .venv: nothing of the dev venv is visible.
base=$("$PY" -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))')
"$base" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "$wheel[deploy]"
if "$WORK/venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "test-wheel: torch got installed with the wheel; the base install must not need it" >&2
  exit 1
fi

cd "$WORK"  # away from the checkout: nothing may be found through it
step "crisp-edge boards"
boards=$(venv/bin/crisp-edge boards 2>/dev/null | awk '{print $1}' | sort | tr '\n' ' ')
if [ "$boards" != "generic-aarch64 generic-x86-64 jetson-nano jetson-orin-nano rpi4 rpi5 " ]; then
  echo "test-wheel: crisp-edge boards listed '$boards', not the six built-in profiles" >&2
  exit 1
fi

step "crisp-edge deploy --board rpi4 --toolchain zig --out bundle.tar.gz"
XDG_CACHE_HOME="$WORK/cache" ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$HOME/.cache/zig}" \
  venv/bin/crisp-edge deploy --board rpi4 --toolchain zig --out bundle.tar.gz --no-dense-twin \
  --model "$DATA/sparse.crisp" --model "$DATA/quant.crisp" --model "$DATA/convs.crisp"
mkdir bundle && tar xzf bundle.tar.gz -C bundle --strip-components=1

step "the bundle's crisp-run under qemu-aarch64 -cpu cortex-a72 against the host runtime"
venv/bin/python - "$DATA" bundle <<'EOF'
import json, subprocess, sys
from pathlib import Path

import numpy as np

import crisp_edge

data, bundle = Path(sys.argv[1]), Path(sys.argv[2])
build = json.loads((bundle / "manifest.json").read_text())["build"]
assert build["toolchain"] == "zig" and build["tools_target"] == "aarch64-linux-musl", build
for tool in ("crisp-run", "crisp-bench", "crisp-personalize"):
    head = (bundle / "bin" / tool).read_bytes()[:64]
    # ELF, aarch64 (e_machine 183), ET_EXEC: statically linked, not PIE-with-interpreter.
    assert head[:4] == b"\x7fELF" and head[18:20] == (183).to_bytes(2, "little"), tool
    assert b"ld-musl" not in (bundle / "bin" / tool).read_bytes(), f"{tool} is not static"
for name in ("sparse", "quant", "convs"):
    out = bundle / f"{name}.out.npy"
    subprocess.run(["qemu-aarch64", "-cpu", "cortex-a72", str(bundle / "bin" / "crisp-run"),
                    str(bundle / "models" / f"{name}.crisp"), str(data / f"{name}.input.npy"),
                    "--output", str(out)], check=True, capture_output=True, timeout=120)
    with crisp_edge.load(data / f"{name}.crisp") as m:
        host = m.run(np.load(data / f"{name}.input.npy"))
    board = np.load(out).reshape(host.shape)
    error = float(np.abs(board - host).max())
    scale = max(1.0, float(np.abs(host).max()))
    assert error <= 1e-4 * scale, f"{name}: max abs error {error} > 1e-4 x {scale}"
    assert (board.argmax(-1) == host.argmax(-1)).all(), f"{name}: top-1 differs"
    print(f"  {name}: max abs error {error:.3g} (scale {scale:.3g}), top-1 equal")
EOF
step "passed"
