"""The ``.crisp`` file (docs/format.md): constants, records, writer, reader, payload encodings.

``from crisp_edge import format as fmt`` gives every name of the spec and the records
(``fmt.Tensor``, ``fmt.OP_CONV2D``) and the four entry points ``encode_model``/``write_model``
and ``decode_model``/``read_model``. This package imports only numpy and the standard library.

>>> mf = fmt.read_model("model.crisp")            # doctest: +SKIP
>>> [fmt.OP_NAMES[op.kind] for op in mf.graph.ops]  # doctest: +SKIP
"""

from crisp_edge.format.spec import *  # noqa: F401,F403
from crisp_edge.format.spec import _kind  # noqa: F401  (tests build section tags with it)
from crisp_edge.format.records import *  # noqa: F401,F403
from crisp_edge.format.write import encode_model, write_model  # noqa: F401
from crisp_edge.format.read import decode_model, read_model  # noqa: F401
