"""Which pruned convs the packer stores dense: those the runtime would run dense anyway and
that run faster from a dense layout.

The runtime picks each float32 hybrid layer's form at load from a cost table compiled per
kernel tier (runtime/README.md, "Dense or sparse, per layer"). Where it picks dense (a 2:4-only
layer: half the MACs at well under half the dense kernel's rate) it expands the layer's rows
from the file's encoding for every pixel tile, or, where the memory budget has room, into a
copy made at load. For rows of K >= 1024 floats that costs time the dense model does not pay
(ResNet-50 @50 % ran 1.03-1.05x the dense model's time); stored dense, such a conv is read from
the mapped file as a dense model's is (runtime/README.md, "Stored dense"). Shorter rows run
faster expanded (MobileNetV2 @50 %: 0.96-0.97x the dense model's time) and keep their pattern.
The file grows by what the dense layout costs over the pattern's (zeros are stored as zeros:
the same products, the same accuracy).

The answer comes from the runtime itself (``crisp_model_get_op_form``), so packer and runtime
cannot disagree. It depends on the tier: per-row 2:4 runs dense on every tier of today's table,
row-shared 2:4 (V = 4) only on the scalar one, so pack for the board's tier (``neon`` for a
Raspberry Pi or Jetson), not for a host that differs from it. A layer that lost blocks keeps
its pattern even where it runs dense: SALY's per-class coverage counts the blocks the encoding
keeps, and a dense tensor keeps them all (docs/personalize.md). Linear layers keep their
pattern: a GEMV reads each weight once, so dense gains nothing over the expansion, and a 2:4
head is read in place, faster than dense; the personalisation tools also rewrite the head in
its pattern. int8 layers have no dense form in the runtime's choice.
"""

from __future__ import annotations

from crisp_edge import format as fmt
from crisp_edge.format.encoding import HEADER, HybridHeader
from crisp_edge.errors import ArgumentError, LibraryNotFoundError, LibraryVersionError

HOST = "host"          # the kernels this machine's runtime selects
PORTABLE = "portable"  # keep every pattern: the runtime decides at load, on the board
TIERS = ("avx512f", "avx2_fma", "neon", "scalar")
CHOICES = (HOST, PORTABLE) + TIERS

# A whole model is loaded to ask it; the runtime's default limit (512 MiB) would refuse
# large ones (VGG-16) that the board, with its own limit, may well run.
_QUERY_MEMORY_MB = 0xFFFFFFFF


def check_isa(isa: str) -> str:
    if isa not in CHOICES:
        raise ArgumentError(f"isa must be one of {', '.join(CHOICES)}, got {isa!r}")
    return isa


def _tier(isa: str, why: str) -> str:
    """The tier ``isa`` names (``host``: this machine's), once libcrisp has loaded; else an
    error saying what needed it and how to pack without it."""
    from crisp_edge import runtime

    try:
        host = str(runtime.kernel_isa())
    except (LibraryNotFoundError, LibraryVersionError) as e:
        raise ArgumentError(f"{why} needs libcrisp: {e}; or pack with isa 'portable' (every "
                            "pattern kept, the runtime chooses at load)") from None
    return host if isa == HOST else isa


def tier_of(isa: str) -> str:
    """What PROV records: the tier packed for (``host`` resolved to this machine's when
    libcrisp is there to say), or ``portable``."""
    if isa != HOST:
        return isa
    try:
        return _tier(isa, "isa 'host'")
    except ArgumentError:
        return HOST  # nothing was stored dense (dense_by_cost needed no runtime): harmless


def _keeps_every_block(t: fmt.Tensor) -> bool:
    h = HybridHeader(*HEADER.unpack_from(t.payload()))
    return h.kept_blocks == h.nbr * h.nbc


def dense_by_cost(graph: fmt.Graph, isa: str) -> tuple[list[int], str]:
    """(op indices of the hybrid float32 convs to store dense for ``isa``: those the runtime
    answers ``"dense_stored"`` for that keep every block, the tier's name). ``graph`` has its
    weights encoded as they would be written."""
    check_isa(isa)
    if isa == PORTABLE:
        return [], PORTABLE
    candidates = [i for i, op in enumerate(graph.ops)
                  if op.kind == fmt.OP_CONV2D and op.weight is not None
                  and graph.tensors[op.weight].encoding == fmt.ENCODING_HYBRID_F32
                  and _keeps_every_block(graph.tensors[op.weight])]
    if not candidates:
        return [], tier_of(isa)
    from crisp_edge import runtime

    tier = _tier(isa, f"isa {isa!r} (storing dense the convs that run dense)")
    data = fmt.encode_model(fmt.ModelFile(graph))
    with runtime.load_buffer(data, max_memory_mb=_QUERY_MEMORY_MB) as model:
        forms = model.op_forms(tier)
    return [i for i in candidates if forms[i] == "dense_stored"], tier
