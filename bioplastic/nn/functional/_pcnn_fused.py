"""Numba kernels for the elementwise part of each step of the torch PCNN's whole sequence.

Per step :func:`~bioplastic.nn.functional.pcnn_sequence` does about a dozen elementwise
operations forward and about twenty-five backward around the linking convolution. As torch
operations each is a pass over the step's
tensors with its own dispatch; these kernels do each chain in one pass, on NumPy views of the
same CPU tensors (no copies; :mod:`._fused` makes the views and says when the kernels apply).

* :func:`forward_step` does :func:`~bioplastic.nn.functional.pcnn_step`'s operations in the
  step's order with the step's rounding (no fused multiply-add: ``fastmath`` is off), so its
  pulses and states equal the torch operations bit for bit (tested in float32 and float64).
* :func:`spike_argument` recomputes ``z = F~ (1 + beta L) - E[t-1]`` (times a factor) for the
  surrogate, as the forward pass rounded it; the sigmoid itself stays a torch operation (its
  vectorised ``exp``).
* :func:`backward_step` is the chain rule of :mod:`~bioplastic.nn.functional.pcnn`'s module
  docstring in one pass, and the six per-map parameters' gradient terms, summed over the batch
  into ``(6, C, H·W)``; the gradients agree with autograd through the step loop to round-off
  (tested in float64).

Arrays are 2-D ``(B·C, H·W)`` (C-contiguous rows; row ``r`` is map ``r % C``). ``p`` is
``(8, C)``: ``d_F, d_L, d_E, V_L, V_E, beta`` and the factors ``m_F, m_L`` of the gradient carried
from the next step (``d_F, d_L``; 1 at the last step, whose carries are the loss's own).
``consts`` holds scalars in the tensors' dtype (so float32 stays float32). The loops have no
branch inside the element loop (only per row) and each touches few arrays, so that LLVM
vectorises them (checked in the machine code: the backward loop with the six accumulations
inside it was not vectorised and ran 4–5× slower).
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["forward_step", "spike_argument", "backward_step", "RESET_CODES"]

#: ``reset`` of :func:`~bioplastic.nn.functional.pcnn_step` as the kernels' integer code.
RESET_CODES = {None: 0, "subtract_f": 1, "zero_f": 2}


@njit
def forward_step(f, x, l, c, e, p, consts, has_link, reset, fp, lt, y, et, f_post):
    """One step (``consts = (1,)``): writes ``F~ = d_F F + I`` into ``fp``, ``L`` into ``lt``
    (``d_L L + V_L c`` with ``c = K ⋆ Y[t-1]`` if ``has_link``, else ``d_L L``), the pulses
    ``Y = [F~ (1 + beta L) - E > 0]`` into ``y``, ``E' = d_E E + V_E Y`` into ``et`` and, for a
    reset (code 1 ``subtract_f``, 2 ``zero_f``), F after it into ``f_post``."""
    one = consts[0]
    zero = one - one
    n_r, n_q = fp.shape
    n_c = p.shape[1]
    for r in range(n_r):
        ch = r % n_c
        d_f, d_l, d_e, v_l, v_e, beta = p[0, ch], p[1, ch], p[2, ch], p[3, ch], p[4, ch], p[5, ch]
        if has_link:
            for q in range(n_q):
                lt[r, q] = d_l * l[r, q] + v_l * c[r, q]
        else:
            for q in range(n_q):
                lt[r, q] = d_l * l[r, q]
        for q in range(n_q):
            fv = d_f * f[r, q] + x[r, q]
            z = fv * (beta * lt[r, q] + one) - e[r, q]
            spike = one if z > zero else zero
            fp[r, q] = fv
            y[r, q] = spike
            et[r, q] = d_e * e[r, q] + v_e * spike
        if reset == 1:       # F - Y E[t-1]: the product with the 0/1 pulse is exact
            for q in range(n_q):
                f_post[r, q] = fp[r, q] - y[r, q] * e[r, q]
        elif reset == 2:
            for q in range(n_q):
                f_post[r, q] = fp[r, q] * (one - y[r, q])


@njit
def spike_argument(fp, lt, e_prev, p, consts, out):
    """``out = (F~ (beta L + 1) - E[t-1]) m`` with ``m = consts[5]`` (the sigmoid surrogate's
    scale, else 1)."""
    one, m = consts[0], consts[5]
    n_r, n_q = fp.shape
    n_c = p.shape[1]
    for r in range(n_r):
        beta = p[5, r % n_c]
        for q in range(n_q):
            out[r, q] = (fp[r, q] * (beta * lt[r, q] + one) - e_prev[r, q]) * m


@njit
def backward_step(y, fp, lt, e_prev, s_in, gs, gyc, gx_next, glt_next, g_e, c, p, consts,
                  gx, glt, g_e_out, acc):
    """One step of the backward recurrence from ``t`` to ``t-1``.

    Inputs of step ``t``: pulses ``y``, ``fp`` (F~), ``lt`` (L), ``e_prev`` (E[t-1]), ``c`` (the
    linking conv output; any array if ``V_L`` is not learned); ``s_in`` the surrogate input:
    σ(scale z) for the sigmoid (slope ``a (s - s²)``, ``consts = (1, ms, mz, a, 0, ·, w)``),
    else the slope itself (``a = 0``, ``b = 1``); ``ms`` / ``mz`` are 1 for the ``subtract_f`` /
    ``zero_f`` reset, else 0. ``gs`` dL/dY[t] from the loss, ``gyc`` the same through the next
    step's linking conv; ``gx_next``, ``glt_next`` the next step's ``g_F~`` and ``g_L`` (times
    ``m_F``, ``m_L`` they are dL/dF[t], dL/dL[t]), ``g_e`` dL/dE[t]. Writes ``gx`` (dL/dF~[t] =
    dL/dI[t]), ``glt`` (dL/dL[t] before the decay: the linking conv's output gradient over
    ``V_L``) and ``g_e_out`` (dL/dE[t-1]), and adds the parameters' gradients (``d_F, d_L, d_E,
    V_L, V_E, beta``) over the batch into ``acc`` ``(6, C, H·W)``. The decays' terms pair the
    next step's gradients with this step's F (after its reset) and L, so they need no other
    step's state; ``w = 0`` at the last step (whose carries are the loss's own) drops them, and
    the caller adds the first step's terms (with the initial F and L)."""
    one, ms, mz, a, b, w = consts[0], consts[1], consts[2], consts[3], consts[4], consts[6]
    n_r, n_q = y.shape
    n_c = p.shape[1]
    gu = np.empty(n_q, dtype=y.dtype)        # one row of dL/d(1 + beta L)
    for r in range(n_r):
        ch = r % n_c
        d_e, v_e, beta, m_f, m_l = p[2, ch], p[4, ch], p[5, ch], p[6, ch], p[7, ch]
        for q in range(n_q):
            yv = y[r, q]
            fv = fp[r, q]
            ep = e_prev[r, q]
            gev = g_e[r, q]
            s = s_in[r, q]
            gf = m_f * gx_next[r, q]                               # dL/dF[t]
            gy = (gs[r, q] + gyc[r, q]) - gf * (ms * ep + mz * fv) + gev * v_e
            gz = gy * (a * (s - s * s) + b * s)                    # dL/dz
            gx[r, q] = gf * (one - mz * yv) + gz * (beta * lt[r, q] + one)
            gu_q = gz * fv
            gu[q] = gu_q
            glt[r, q] = m_l * glt_next[r, q] + gu_q * beta
            g_e_out[r, q] = (gev * d_e - ms * (gf * yv)) - gz
        # The parameters' terms, one short loop each over the row just used (still in the
        # cache): in the loop above they would stop LLVM from vectorising it.
        acc_row = acc[0, ch]                 # d_F: the next step's g_F~ times F[t] (reset)
        for q in range(n_q):
            yv = y[r, q]
            f_post = (fp[r, q] - ms * (yv * e_prev[r, q])) * (one - mz * yv)
            acc_row[q] += (w * gx_next[r, q]) * f_post
        acc_row = acc[1, ch]                 # d_L: the next step's g_L times L[t]
        for q in range(n_q):
            acc_row[q] += (w * glt_next[r, q]) * lt[r, q]
        acc_row = acc[2, ch]                 # d_E
        for q in range(n_q):
            acc_row[q] += g_e[r, q] * e_prev[r, q]
        acc_row = acc[3, ch]                 # V_L
        for q in range(n_q):
            acc_row[q] += glt[r, q] * c[r, q]
        acc_row = acc[4, ch]                 # V_E
        for q in range(n_q):
            acc_row[q] += g_e[r, q] * y[r, q]
        acc_row = acc[5, ch]                 # beta
        for q in range(n_q):
            acc_row[q] += gu[q] * lt[r, q]
