"""PCNN neurons as a pure torch step: the maths of :class:`bioplastic.nn.PCNN`.

The map of :mod:`bioplastic.neurons.pcnn` (Convention A; read its docstring for the
Schedule) on maps ``(B, C, H, W)``, with the drive ``I`` in place of feeding coupling
(``v_f = 0``) and the classic internal activity (``decay_u = 0``)::

    F[t] = d_F F[t-1] + I[t]
    L[t] = d_L L[t-1] + V_L (K_link ⋆ Y[t-1])          (no linking term without a kernel)
    U[t] = F[t] (1 + beta L[t])
    Y[t] = H(U[t] - E[t-1])                           strict >, surrogate derivative backward
    E[t] = d_E E[t-1] + V_E Y[t]
    reset (option): "subtract_f": F -= Y E[t-1];  "zero_f": F *= 1 - Y

``⋆`` is ``conv2d`` with zero padding ``k // 2``; a kernel ``(C, 1, k, k)`` is per map
(depthwise, ``groups = C``), ``(C, C, k, k)`` across maps. Parameters are the kernel's own
:class:`bioplastic.neurons.PCNNParams` (validated by the kernel's ``pcnn_prepare``); fields
the torch step does not implement (``v_f != 0``, ``decay_u != 0``, fast linking) are refused.
In float64 the step equals the Numba kernel with ``v_f = 0`` and ``decay_u = 0``: identical
pulses, state to summation round-off (``conv2d`` sums the linking terms in its own order).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as fn

from ...neurons.pcnn import PCNNParams
from ...neurons.pcnn import pcnn_prepare as kernel_pcnn_prepare
from ..base import resolve_like
from ..surrogate import spike

__all__ = ["PCNNTensorParams", "PCNNTensorState", "pcnn_prepare", "pcnn_initial_state",
           "pcnn_step", "DPCNN_INIT", "RESETS"]

RESETS = (None, "subtract_f", "zero_f")

#: Initial values of a trainable DPCNN layer (:class:`bioplastic.nn.PCNN`'s default), not the
#: kernel's default (Zhan's 1-D demo, whose feeding coupling ``v_f = 0.1`` the layer replaces
#: by its drive and whose ``v_e = 6`` with ``e0 ≈ 0.82`` would silence a batch-normalised
#: drive): every decay in (0, 1) so it can be learned, ``e0 = 1`` the threshold scale that the
#: normalisations (``tdbn``, ``rftd``) target. ``linking_kernel=None`` means the layer's
#: default kernel (:func:`bioplastic.nn.pcnn.default_link_kernel`).
DPCNN_INIT = PCNNParams(decay_f=0.5, decay_l=0.5, decay_e=0.8, v_f=0.0, v_l=1.0, v_e=1.0,
                        beta=0.2, decay_u=0.0, e0=1.0, coupling="intra",
                        source="bioplastic DPCNN layer initial values")


class PCNNTensorState(NamedTuple):
    f: torch.Tensor    # feeding F (B, C, H, W)
    l: torch.Tensor    # linking L
    e: torch.Tensor    # threshold E
    y: torch.Tensor    # last pulses Y (0/1, float)


class PCNNTensorParams(NamedTuple):
    """What :func:`pcnn_step` reads: per-map tensors ``(C, 1, 1)``."""

    decay_f: torch.Tensor
    decay_l: torch.Tensor
    decay_e: torch.Tensor
    v_l: torch.Tensor
    v_e: torch.Tensor
    beta: torch.Tensor


def check_torch_supported(params: PCNNParams) -> None:
    """Refuse the kernel features the torch step does not implement."""
    if np.any(np.asarray(params.v_f, dtype=np.float64) != 0):
        raise ValueError(f"the torch PCNN has no feeding coupling (its drive replaces it): "
                         f"v_f must be 0, got {params.v_f!r}")
    if np.any(np.asarray(params.decay_u, dtype=np.float64) != 0):
        raise ValueError(f"the torch PCNN uses the classic U = F (1 + beta L): decay_u must be "
                         f"0, got {params.decay_u!r}")
    if params.fast_linking is not False:
        raise ValueError("the torch PCNN has no fast linking: fast_linking must be False, got "
                         f"{params.fast_linking!r}")


def pcnn_prepare(params: PCNNParams, channels: int, *, dtype=torch.float64, device=None
                 ) -> tuple[PCNNTensorParams, torch.Tensor | None]:
    """``(tensor_params, link_weight)`` for :func:`pcnn_step` from the kernel's parameters.

    Validated by the kernel's own :func:`bioplastic.neurons.pcnn.pcnn_prepare`;
    ``link_weight`` is ``(C, G, kh, kw)`` (``G = 1`` intra, ``C`` inter) or ``None`` for
    ``coupling="none"`` (or no linking kernel).
    """
    check_torch_supported(params)
    kp = kernel_pcnn_prepare(params, (channels, 1, 1))
    link = kp.linking_weights

    def per_map(values):
        return torch.as_tensor(values).reshape(-1, 1, 1).to(dtype=dtype, device=device)

    tensors = PCNNTensorParams(*(per_map(getattr(kp, name))
                                 for name in PCNNTensorParams._fields))
    has_link = params.coupling != "none" and params.linking_kernel is not None
    return tensors, (torch.as_tensor(link).to(dtype=dtype, device=device) if has_link else None)


def pcnn_initial_state(shape, e0=1.0, *, dtype=None, device=None) -> PCNNTensorState:
    """Zero F, L, Y and ``E = e0`` (broadcast), for one time step ``(B, C, H, W)``."""
    shape, dtype, device = resolve_like(shape, dtype, device)
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    e = torch.broadcast_to(torch.as_tensor(e0, dtype=dtype, device=device), shape).clone()
    return PCNNTensorState(zeros, zeros.clone(), e, zeros.clone())


def link_input(y: torch.Tensor, link_weight: torch.Tensor) -> torch.Tensor:
    """``K ⋆ Y`` (zero padding ``k // 2``; depthwise for a ``(C, 1, k, k)`` kernel)."""
    groups = y.shape[1] if link_weight.shape[1] == 1 else 1
    padding = (link_weight.shape[2] // 2, link_weight.shape[3] // 2)
    return fn.conv2d(y, link_weight, padding=padding, groups=groups)


def pcnn_step(x_t: torch.Tensor, state: PCNNTensorState,
              params: PCNNTensorParams | PCNNParams, link_weight: torch.Tensor | None = None, *,
              reset: str | None = None, surrogate: str = "sigmoid",
              surrogate_scale: float = 4.0) -> tuple[torch.Tensor, PCNNTensorState]:
    """One PCNN iteration (module docstring). Arguments are not modified.

    Parameters
    ----------
    x_t : tensor (B, C, H, W) — drive ``I[t]``
    state : PCNNTensorState
    params : PCNNTensorParams, or PCNNParams (prepared on the fly; its linking kernel is then
        used unless ``link_weight`` is given)
    link_weight : tensor (C, 1, kh, kw) or (C, C, kh, kw), optional
    reset : None, "subtract_f" or "zero_f"
    surrogate, surrogate_scale : see :func:`bioplastic.nn.spike`

    Returns
    -------
    pulses : tensor like ``x_t`` (0/1), new_state : PCNNTensorState
    """
    if isinstance(params, PCNNParams):
        params, kernel = pcnn_prepare(params, x_t.shape[1], dtype=x_t.dtype, device=x_t.device)
        link_weight = kernel if link_weight is None else link_weight
    f = params.decay_f * state.f + x_t
    l = params.decay_l * state.l
    if link_weight is not None:
        l = l + params.v_l * link_input(state.y, link_weight)
    u = f * (1.0 + params.beta * l)
    y = spike(u - state.e, surrogate=surrogate, scale=surrogate_scale)
    e = params.decay_e * state.e + params.v_e * y
    if reset == "subtract_f":
        f = f - y * state.e
    elif reset == "zero_f":
        f = f * (1.0 - y)
    return y, PCNNTensorState(f, l, e, y)

