""".npy bytes -> Parsed: one 2-D numeric array, rows the samples. Its header (shape, dtype) is checked against the
limits before the values are read, and nothing is unpickled (numpy.load with allow_pickle=False)."""
from __future__ import annotations

import io

import numpy as np
from numpy.lib import format as npy_format

from vae_core.data.vectors.limits import VectorDataError, VectorLimits, amount
from vae_core.data.vectors.parsed import Parsed, default_name

NPY_MAGIC = b"\x93NUMPY"
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
SAVE_HINT = "Save one 2-D numeric array, rows the samples: numpy.save(path, x.astype(numpy.float32))."


def parse_npy(data: bytes, limits: VectorLimits) -> Parsed:
    """The rows of a .npy array; raises VectorDataError where it is not one 2-D numeric array within the limits."""
    shape, dtype = _header(data)
    _check_dtype(dtype)
    _check_shape(shape, limits)
    try:
        x = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise VectorDataError(f"The .npy file is truncated or damaged ({str(e)[:120]}). {SAVE_HINT}") from None
    n, d = shape
    return Parsed("npy", x.astype(np.float64), np.arange(1, n + 1, dtype=np.int64),
                  tuple(default_name(j) for j in range(d)), n, header=False)


def not_npy(data: bytes) -> str:
    """What a file that is not a .npy is instead, and what to do."""
    if data[:1] == b"\x80" and data[1:2] in (bytes([p]) for p in range(2, 6)):
        return f"The file is a Python pickle, not a .npy; pickles are never loaded (they can run code). {SAVE_HINT}"
    if data.startswith(b"PK\x03\x04"):
        return f"The file is a zip archive (an .npz is one), not a .npy. {SAVE_HINT}"
    return f"The file is not a .npy (it does not begin with numpy's magic bytes). {SAVE_HINT}"


def _header(data: bytes) -> tuple[tuple[int, ...], np.dtype]:
    if not data.startswith(NPY_MAGIC):
        raise VectorDataError(not_npy(data))
    f = io.BytesIO(data)
    try:
        version = npy_format.read_magic(f)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read(f)
    except Exception as e:  # numpy parses the header as a Python literal: a damaged one raises anything tokenize does
        raise VectorDataError(f"The .npy file's header cannot be read ({type(e).__name__}: {str(e)[:120]}). "
                              f"{SAVE_HINT}") from None
    return shape, dtype


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise VectorDataError(f"The .npy array holds Python objects (dtype {dtype}); they would be unpickled, which "
                              f"is never done. {SAVE_HINT}")
    if dtype.names or dtype.kind not in NUMERIC_KINDS:
        raise VectorDataError(f"The .npy array's dtype {dtype} is not a plain number type. {SAVE_HINT}")


def _check_shape(shape: tuple[int, ...], limits: VectorLimits) -> None:
    if len(shape) != 2:
        hint = " (one feature per sample: x.reshape(-1, 1))" if len(shape) == 1 else ""
        raise VectorDataError(f"The .npy array is {len(shape)}-D, shape {shape}; rows of samples need a 2-D array "
                              f"(samples, features){hint}. {SAVE_HINT}")
    n, d = shape
    if n == 0 or d == 0:
        raise VectorDataError(f"The .npy array is empty, shape {shape}. {SAVE_HINT}")
    for name, value in (("rows", n), ("columns", d), ("cells", n * d)):
        if value > getattr(limits, name):
            raise VectorDataError(f"The .npy array has {value:,} {name}, shape {shape}; the limit is "
                                  f"{amount(name, getattr(limits, name))}. Keep fewer rows or columns.")
