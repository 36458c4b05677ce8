"""Numba kernels for the elementwise part of one step of the STC conv cell's whole-sequence path.

:func:`bioplastic.nn.functional.stc_conv_sequence` runs, per step, a group convolution, a
GroupNorm and ``tanh`` (torch ops) and then a chain of about a dozen elementwise operations
forward and about thirty backward. As torch ops each is a separate pass over the step's tensors
with its own dispatch cost; these kernels do each chain in **one** pass, on NumPy views of the
same CPU tensors (no copies). The loops are branch-free, so that LLVM vectorises them.

* :func:`forward_step` does :func:`bioplastic.nn.functional.stc_step`'s operations after the
  ``tanh`` in the same order, with the same rounding (no fused multiply-add: the library's
  Numba flags keep ``fastmath`` off), so its spikes and membrane equal the torch ops bit for
  bit (tested in float32 and float64).
* :func:`backward_step` is the torch-op backward's chain rule (the sigmoid of the surrogate
  comes in from torch); the gradients agree with it to round-off.

Arrays are 2-D ``(B·groups, C/groups·H·W)`` (C-contiguous rows); the gate-argument gradient
``dy`` is ``(B·groups, 2, C/groups·H·W)``, the layout of the interleaved gate tensor (group
``g``: its ``h`` channels, then its ``v`` channels). ``consts`` holds ``(1, k_h, k_i, v_th,
surrogate scale, mul, add, q0, q1)`` in the tensors' dtype, so that float32 stays float32.
``ta``/``tb`` are the stored gate values ``u`` (``tanh(x)``, or ``σ(2x)`` for the sigmoid
form): the gate is ``u·mul + add`` (``u + 1`` or ``2u``, exactly as the step computes it) and
its derivative ``(q0 + q1·u)(1 − u)`` (``1 − u²`` or ``4u(1 − u)``).
"""

from __future__ import annotations

from ..._jit import njit

__all__ = ["forward_step", "backward_step"]


@njit
def forward_step(ta, tb, h, cur, consts, hs, s, h_out):
    """``H_s = (alpha k_h) H + (beta k_i) I``, ``S = [H_s >= v_th]``, ``H' = H_s - S v_th``
    (``alpha = ta·mul + add``, ``beta`` likewise): writes ``hs``, ``s`` and ``h_out``."""
    one, k_h, k_i, v_th = consts[0], consts[1], consts[2], consts[3]
    mul, add = consts[5], consts[6]
    zero = one - one
    n_r, n_q = hs.shape
    for r in range(n_r):
        for q in range(n_q):
            x = ((ta[r, q] * mul + add) * k_h) * h[r, q]
            x = x + ((tb[r, q] * mul + add) * k_i) * cur[r, q]
            spike = one if x >= v_th else zero
            hs[r, q] = x
            s[r, q] = spike
            h_out[r, q] = x - spike * v_th


@njit
def backward_step(sig, h_prev, s_prev, ta, tb, cur, carry, g_s, g_alpha, g_beta, consts,
                  carry_out, dy, grad_i, acc_kh, acc_ki):
    """One step of the backward recurrence (see :mod:`bioplastic.nn.functional.stc`).

    ``sig`` = ``σ(scale (H_s - v_th))``; the membrane before the step is ``h_prev - v_th
    s_prev`` (pass the initial membrane and zeros at ``t = 0``); ``g_s`` = dL/dS[t] from the
    loss and through the next step's gates; ``g_alpha``, ``g_beta`` the loss on this step's
    gates (zeros but at the last step). Writes ``carry_out`` (dL/dH[t-1]), the gate-argument
    gradients ``dy``, ``grad_i`` (dL/dI[t]) and adds to the ``k_h`` / ``k_i`` accumulators.
    """
    one, k_h, k_i, v_th, scale = consts[0], consts[1], consts[2], consts[3], consts[4]
    mul, add, q0, q1 = consts[5], consts[6], consts[7], consts[8]
    n_r, n_q = sig.shape
    for r in range(n_r):
        for q in range(n_q):
            c = carry[r, q]
            sg = scale * sig[r, q] * (one - sig[r, q])
            ghs = (g_s[r, q] - c * v_th) * sg + c          # dL/dH_s[t]
            d_ka = ghs * (h_prev[r, q] - s_prev[r, q] * v_th)   # dL/d(k_h alpha)
            t_a = ta[r, q]
            alpha = t_a * mul + add
            acc_kh[r, q] += d_ka * alpha
            carry_out[r, q] = ghs * (alpha * k_h)
            dy[r, 0, q] = (d_ka * k_h + g_alpha[r, q]) * ((q0 + q1 * t_a) * (one - t_a))
            d_kb = ghs * cur[r, q]                          # dL/d(k_i beta)
            t_b = tb[r, q]
            beta = t_b * mul + add
            acc_ki[r, q] += d_kb * beta
            grad_i[r, q] = ghs * (beta * k_i)
            dy[r, 1, q] = (d_kb * k_i + g_beta[r, q]) * ((q0 + q1 * t_b) * (one - t_b))
