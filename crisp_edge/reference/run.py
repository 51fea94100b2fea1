"""Run a ``.crisp`` graph in Python with the executor its dtypes call for."""

from __future__ import annotations

import numpy as np
import torch

from crisp_edge import format as fmt
from crisp_edge.reference.fp32 import execute
from crisp_edge.reference.int8 import run_int8


def run_graph(graph: fmt.Graph, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Run ``graph`` on a batch ``x`` (N, *input shape); returns (N, *output shape) float32.
    A graph with int8 values runs through :func:`crisp_edge.reference.int8.run_int8` (the spec's
    integer arithmetic), a float32 one through :func:`crisp_edge.reference.fp32.execute`."""
    if any(v.dtype != fmt.DTYPE_F32 for v in graph.values):
        return run_int8(graph, np.asarray(x, dtype=np.float32))
    return execute(graph, x).numpy()
