"""The ``.crisp`` file, version 1.2: every constant and record layout of docs/format.md.

The one place on the Python side that states the byte layout (``docs/format.md`` is normative);
:mod:`crisp_edge.format.records` holds the in-memory records, :mod:`~crisp_edge.format.write`
and :mod:`~crisp_edge.format.read` turn them into bytes and back, and
:mod:`~crisp_edge.format.encoding` owns the weight payload layouts.
"""

from __future__ import annotations

import struct

MAGIC = b"\x89CRISP\r\n"
VERSION_MAJOR, VERSION_MINOR = 1, 2
# The writer stamps the lowest minor version a file needs, so a file without the 1.2 ops and
# activations still loads on 1.1 runtimes already on boards.
VERSION_MINOR_BASE = 1
ALIGNMENT = 64
HEADER_SIZE, SECTION_ENTRY_SIZE = 64, 32
GRAPH_HEADER_SIZE, VALUE_RECORD_SIZE, TENSOR_RECORD_SIZE, OP_RECORD_SIZE = 32, 48, 48, 96
VALUE_RECORD_SIZE_1_0 = 32  # 1.0 files: no quantisation fields, every value float32
LABEL_HEADER_SIZE, LABEL_RECORD_SIZE = 16, 16
SALIENCY_HEADER_SIZE, SALIENCY_RECORD_SIZE = 16, 32
MAX_SECTIONS, MAX_RECORDS, MAX_LABEL_NAME_BYTES = 64, 65536, 1024
NO_ID = 0xFFFFFFFF
NUM_PARAMS = 16


def _kind(tag: bytes) -> int:
    return int.from_bytes(tag, "little")


SECTION_GRPH, SECTION_WGHT = _kind(b"GRPH"), _kind(b"WGHT")
SECTION_LABL, SECTION_PROV = _kind(b"LABL"), _kind(b"PROV")
SECTION_SALY, SECTION_PREP = _kind(b"SALY"), _kind(b"PREP")
KNOWN_SECTIONS = (SECTION_GRPH, SECTION_WGHT, SECTION_LABL, SECTION_PROV, SECTION_SALY,
                  SECTION_PREP)
SECTION_FLAG_REQUIRED = 1


def section_name(kind: int) -> str:
    """The four-character name of a section kind (``0x48505247`` → ``"GRPH"``)."""
    raw = kind.to_bytes(4, "little")
    return raw.decode("ascii") if all(32 <= b < 127 for b in raw) else f"0x{kind:08x}"


DTYPE_F32, DTYPE_I8 = 1, 2
DTYPE_NAMES = {DTYPE_F32: "float32", DTYPE_I8: "int8"}
ENCODING_DENSE_F32, ENCODING_HYBRID_F32, ENCODING_DENSE_I8, ENCODING_HYBRID_I8 = 1, 2, 3, 4
ENCODING_NAMES = {ENCODING_DENSE_F32: "DENSE_F32", ENCODING_HYBRID_F32: "HYBRID_F32",
                  ENCODING_DENSE_I8: "DENSE_I8", ENCODING_HYBRID_I8: "HYBRID_I8"}
HYBRID_ENCODINGS = (ENCODING_HYBRID_F32, ENCODING_HYBRID_I8)
INT8_ENCODINGS = (ENCODING_DENSE_I8, ENCODING_HYBRID_I8)

OP_CONV2D, OP_LINEAR, OP_ADD, OP_RELU, OP_RELU6 = 1, 2, 3, 4, 5
OP_MAX_POOL2D, OP_AVG_POOL2D, OP_GLOBAL_AVG_POOL, OP_ADAPTIVE_AVG_POOL2D = 6, 7, 8, 9
OP_RESHAPE, OP_SOFTMAX, OP_QUANTIZE, OP_DEQUANTIZE = 10, 11, 12, 13
OP_SILU, OP_SIGMOID, OP_HARDSWISH, OP_HARDSIGMOID, OP_MUL_CHANNELS = 14, 15, 16, 17, 18  # 1.2
OP_NAMES = {
    OP_CONV2D: "CONV2D", OP_LINEAR: "LINEAR", OP_ADD: "ADD", OP_RELU: "RELU", OP_RELU6: "RELU6",
    OP_MAX_POOL2D: "MAX_POOL2D", OP_AVG_POOL2D: "AVG_POOL2D", OP_GLOBAL_AVG_POOL: "GLOBAL_AVG_POOL",
    OP_ADAPTIVE_AVG_POOL2D: "ADAPTIVE_AVG_POOL2D", OP_RESHAPE: "RESHAPE", OP_SOFTMAX: "SOFTMAX",
    OP_QUANTIZE: "QUANTIZE", OP_DEQUANTIZE: "DEQUANTIZE", OP_SILU: "SILU", OP_SIGMOID: "SIGMOID",
    OP_HARDSWISH: "HARDSWISH", OP_HARDSIGMOID: "HARDSIGMOID", OP_MUL_CHANNELS: "MUL_CHANNELS",
}
OPS_1_2 = (OP_SILU, OP_SIGMOID, OP_HARDSWISH, OP_HARDSIGMOID, OP_MUL_CHANNELS)

# PREP: how an image becomes the graph input.
PREP_RECORD_SIZE = 64
RESIZE_NONE, RESIZE_SHORTER_SIDE, RESIZE_STRETCH = 0, 1, 2
RESIZE_NAMES = {RESIZE_NONE: "none", RESIZE_SHORTER_SIDE: "shorter_side",
                RESIZE_STRETCH: "stretch"}
CHANNELS_RGB, CHANNELS_BGR = 0, 1
CHANNEL_ORDER_NAMES = {CHANNELS_RGB: "RGB", CHANNELS_BGR: "BGR"}
PREP_MAX_RESIZE_SIZE = 16384

ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2
ACT_SILU, ACT_SIGMOID, ACT_HARDSWISH, ACT_HARDSIGMOID = 3, 4, 5, 6  # 1.2: float32 only
ACTIVATION_NAMES = {ACT_NONE: "none", ACT_RELU: "relu", ACT_RELU6: "relu6", ACT_SILU: "silu",
                    ACT_SIGMOID: "sigmoid", ACT_HARDSWISH: "hardswish",
                    ACT_HARDSIGMOID: "hardsigmoid"}
ACTIVATIONS_1_2 = (ACT_SILU, ACT_SIGMOID, ACT_HARDSWISH, ACT_HARDSIGMOID)
# The standalone op of each 1.2 activation (the same function, not fused).
ACTIVATION_OPS = {ACT_SILU: OP_SILU, ACT_SIGMOID: OP_SIGMOID, ACT_HARDSWISH: OP_HARDSWISH,
                  ACT_HARDSIGMOID: OP_HARDSIGMOID}

# Param indices, named as in docs/format.md.
CONV_KH, CONV_KW, CONV_STRIDE_H, CONV_STRIDE_W = 0, 1, 2, 3
CONV_PAD_TOP, CONV_PAD_LEFT, CONV_PAD_BOTTOM, CONV_PAD_RIGHT = 4, 5, 6, 7
CONV_DILATION_H, CONV_DILATION_W, CONV_GROUPS = 8, 9, 10
MAXPOOL_KH, MAXPOOL_KW, MAXPOOL_STRIDE_H, MAXPOOL_STRIDE_W, MAXPOOL_PAD_H, MAXPOOL_PAD_W = range(6)
MAXPOOL_DILATION_H, MAXPOOL_DILATION_W, MAXPOOL_CEIL_MODE = 6, 7, 8
AVGPOOL_KH, AVGPOOL_KW, AVGPOOL_STRIDE_H, AVGPOOL_STRIDE_W, AVGPOOL_PAD_H, AVGPOOL_PAD_W = range(6)
AVGPOOL_CEIL_MODE, AVGPOOL_COUNT_INCLUDE_PAD, AVGPOOL_DIVISOR_OVERRIDE = 6, 7, 8
ADAPTIVE_OH, ADAPTIVE_OW = 0, 1
SOFTMAX_AXIS = 0

PARAM_NAMES: dict[int, tuple[str, ...]] = {
    OP_CONV2D: ("kh", "kw", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
                "pad_right", "dilation_h", "dilation_w", "groups"),
    OP_MAX_POOL2D: ("kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w", "dilation_h",
                    "dilation_w", "ceil_mode"),
    OP_AVG_POOL2D: ("kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w", "ceil_mode",
                    "count_include_pad", "divisor_override"),
    OP_ADAPTIVE_AVG_POOL2D: ("oh", "ow"),
    OP_SOFTMAX: ("axis",),
}

_HEADER = struct.Struct("<8sHHIQQIIII12sI")
_SECTION = struct.Struct("<IIQQII")
_GRAPH = struct.Struct("<8I")
_VALUE = struct.Struct("<II4IIIfi8x")
_TENSOR = struct.Struct("<II4IQQII")
_OP = struct.Struct("<8I16i")
_LABEL_HEADER = struct.Struct("<4I")
_LABEL = struct.Struct("<iIII")
_SALIENCY_HEADER = struct.Struct("<4I")
_PREP = struct.Struct("<7If3f3f8x")
_SALIENCY = struct.Struct("<6IQ")
assert _HEADER.size == HEADER_SIZE and _SECTION.size == SECTION_ENTRY_SIZE
assert _VALUE.size == VALUE_RECORD_SIZE and _TENSOR.size == TENSOR_RECORD_SIZE
assert _OP.size == OP_RECORD_SIZE and _GRAPH.size == GRAPH_HEADER_SIZE
assert _SALIENCY.size == SALIENCY_RECORD_SIZE and _PREP.size == PREP_RECORD_SIZE
