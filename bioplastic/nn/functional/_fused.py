"""What the Numba elementwise kernels of the torch whole-sequence paths share.

The STC conv cell (:mod:`._stc_fused`) and the PCNN layer (:mod:`._pcnn_fused`) run each time
step's chain of elementwise operations as one compiled loop over NumPy views of the same CPU
tensors (no copies), instead of one torch operation (one pass over memory, one dispatch) per
arithmetic step. This module says when those kernels may run and makes the views:

* :func:`kernels_apply`: on the CPU, in float32 or float64, every tensor of one dtype, and
  Numba not disabled (``BIOPLASTIC_DISABLE_JIT=1``); elsewhere the torch operations run;
* :func:`as_array`: a tensor as a C-contiguous NumPy array of a given shape — a view when the
  tensor is contiguous (every buffer the paths allocate), else a copy; a buffer the kernel
  writes into (``write=True``) must be contiguous, since the writes to a copy would be lost;
* :func:`constants`: scalars as a NumPy array of the tensors' dtype, so that a float32 kernel
  computes in float32 (a Python float literal inside a kernel is float64, and mixing it in
  would round differently from torch's float32 operations).

The kernels are compiled through :func:`bioplastic._jit.njit` (``fastmath`` off, so no fused
multiply-add and no reassociation: a forward kernel doing a torch step's operations in the
step's order rounds exactly as the step does).
"""

from __future__ import annotations

import numpy as np
import torch

from ..._jit import JIT_DISABLED

__all__ = ["KERNEL_DTYPES", "kernels_apply", "as_array", "constants", "numpy_dtype"]

KERNEL_DTYPES = (torch.float32, torch.float64)


def kernels_apply(*tensors: torch.Tensor | None) -> bool:
    """Whether the Numba kernels can take these tensors (``None`` entries are skipped): all on
    the CPU, of one dtype, float32 or float64, and the JIT not disabled."""
    present = [t for t in tensors if t is not None]
    if JIT_DISABLED or not present:
        return False
    dtype = present[0].dtype
    return dtype in KERNEL_DTYPES and all(t.device.type == "cpu" and t.dtype == dtype
                                          for t in present)


def numpy_dtype(dtype: torch.dtype):
    """NumPy's float32 or float64 for a kernel dtype."""
    return np.float32 if dtype == torch.float32 else np.float64


def as_array(x: torch.Tensor, shape, *, write: bool = False) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array ``shape``: a view of a contiguous tensor, else a
    copy (an input such as a broadcast initial state or gradient). ``write=True`` (a buffer
    the kernel writes into) refuses a non-contiguous ``x``: the kernel's writes to a copy
    would be lost. The paths allocate their buffers contiguous, so that is a bug here."""
    if write and not x.is_contiguous():
        raise RuntimeError(f"a kernel's output buffer must be a contiguous tensor (a copy "
                           f"would lose the writes), got strides {x.stride()} for shape "
                           f"{tuple(x.shape)}")
    return x.detach().contiguous().view(shape).numpy()


def constants(values, dtype: torch.dtype) -> np.ndarray:
    """``values`` (floats) as a 1-D NumPy array of the kernels' dtype."""
    return np.array([float(v) for v in values], dtype=numpy_dtype(dtype))
