"""Surrogate-gradient spike functions.

Forward: the Heaviside step ``spike = (x > 0)`` — strict ``>``, the same comparison as every
kernel's threshold, so the forward pass equals the Numba kernel. Backward: the derivative of a
smooth stand-in, selected by name and scale.

* ``fast_sigmoid`` (SuperSpike, Zenke & Ganguli 2018): ``1 / (scale*|x| + 1)**2``
* ``sigmoid``: ``scale * s * (1 - s)`` with ``s = sigmoid(scale*x)``
* ``atan`` (SpikingJelly's ATan): ``scale/2 / (1 + (pi/2*scale*x)**2)``
* ``triangle``: ``max(0, 1 - |x|*scale) * scale``
"""

from __future__ import annotations

import math

import torch

__all__ = ["spike", "SURROGATES"]


def _fast_sigmoid(x, scale):
    return 1.0 / (scale * x.abs() + 1.0) ** 2


def _sigmoid(x, scale):
    s = torch.sigmoid(scale * x)
    return scale * s * (1.0 - s)


def _atan(x, scale):
    return (scale / 2.0) / (1.0 + (math.pi / 2.0 * scale * x) ** 2)


def _triangle(x, scale):
    return torch.clamp(1.0 - x.abs() * scale, min=0.0) * scale


SURROGATES = {"fast_sigmoid": _fast_sigmoid, "sigmoid": _sigmoid, "atan": _atan,
              "triangle": _triangle}


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, kind):
        ctx.save_for_backward(x)
        ctx.scale, ctx.kind = scale, kind
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * SURROGATES[ctx.kind](x, ctx.scale), None, None


def spike(x: torch.Tensor, *, surrogate: str = "fast_sigmoid", scale: float = 10.0):
    """Heaviside forward (``x > 0``), surrogate derivative backward."""
    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {surrogate!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    return _Spike.apply(x, float(scale), surrogate)
