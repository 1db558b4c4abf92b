"""What the numbers in a GGUF file mean: ggml tensor types and llama.cpp file types.

Tensor block geometry is copied from gguf-py's `GGML_QUANT_SIZES` (ggml's type traits), and file
types from `llama_ftype` in llama.h. Both only grow upstream; unknown numbers are handled by the
callers rather than rejected, so a file newer than this table still opens.
"""

from __future__ import annotations

from dataclasses import dataclass

_QK_K = 256


@dataclass(frozen=True, slots=True)
class GGMLType:
    """A tensor storage type: `type_size` bytes hold one block of `block_size` elements."""

    name: str
    block_size: int
    type_size: int


def _table(*rows: tuple[int, str, int, int]) -> dict[int, GGMLType]:
    return {number: GGMLType(name, block, size) for number, name, block, size in rows}


# Numbers 4, 5 (Q4_2, Q4_3) and 31-33, 36-38 (repacked Q4_0 / IQ4_NL) were removed from ggml.
GGML_TYPES: dict[int, GGMLType] = _table(
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 2 + 16),
    (3, "Q4_1", 32, 2 + 2 + 16),
    (6, "Q5_0", 32, 2 + 4 + 16),
    (7, "Q5_1", 32, 2 + 2 + 4 + 16),
    (8, "Q8_0", 32, 2 + 32),
    (9, "Q8_1", 32, 4 + 4 + 32),
    (10, "Q2_K", _QK_K, 2 + 2 + _QK_K // 16 + _QK_K // 4),
    (11, "Q3_K", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12),
    (12, "Q4_K", _QK_K, 2 + 2 + _QK_K // 2 + 12),
    (13, "Q5_K", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 8 + 12),
    (14, "Q6_K", _QK_K, 2 + _QK_K // 2 + _QK_K // 4 + _QK_K // 16),
    (15, "Q8_K", _QK_K, 4 + _QK_K + _QK_K // 8),
    (16, "IQ2_XXS", _QK_K, 2 + _QK_K // 4),
    (17, "IQ2_XS", _QK_K, 2 + _QK_K // 4 + _QK_K // 32),
    (18, "IQ3_XXS", _QK_K, 2 + _QK_K // 4 + _QK_K // 8),
    (19, "IQ1_S", _QK_K, 2 + _QK_K // 8 + _QK_K // 16),
    (20, "IQ4_NL", 32, 2 + 16),
    (21, "IQ3_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + _QK_K // 32 + 4),
    (22, "IQ2_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 16),
    (23, "IQ4_XS", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 64),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", _QK_K, _QK_K // 8 + _QK_K // 16 + _QK_K // 32),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", _QK_K, 2 + 4 * 13),
    (35, "TQ2_0", _QK_K, 2 + 64),
    (39, "MXFP4", 32, 1 + 16),
    (40, "NVFP4", 64, 4 + 32),
    (41, "Q1_0", 128, 2 + 16),
)

# `general.file_type` (llama_ftype) as users know it from file names: "Q4_K_M", not "MOSTLY_Q4_K_M".
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}


def ggml_type_name(number: int) -> str:
    """The type's ggml name, or `type N` for one newer than this table."""
    known = GGML_TYPES.get(number)
    return known.name if known else f"type {number}"
