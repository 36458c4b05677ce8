"""Numba loops for the gate-free soft-reset neurons' whole-sequence path (the LIF and PLIF
baselines of the STC conv cells).

:func:`bioplastic.nn.functional.stc_sequence` and
:func:`~bioplastic.nn.functional.plif_fang_sequence` have no convolution between steps, so all
``T`` steps run in **one** compiled loop forward and one backward, on NumPy views of the CPU
tensors (no copies), instead of about seven torch operations per step forward and ten backward
(each a separate pass with its own dispatch cost).

Two charge forms (``fang`` flag)::

    "stc"  (fang False): H_s = a*H + b*I          (stc_step's k_h * h + k_i * current)
    "fang" (fang True):  H_s = H + (I - H)*a      (plif_fang_step, a = σ(w))
    S = [H_s >= v_th] ;  H = H_s - S*v_th

* :func:`forward_sequence` does the torch operations in their order with the same rounding (no
  fused multiply-add: the library's Numba flags keep ``fastmath`` off), so its spikes and
  membranes equal the step loop bit for bit (tested in float32 and float64).
* :func:`backward_sequence` is the chain rule of the module docstring of
  :mod:`bioplastic.nn.functional.stc`; the surrogate's sigmoid comes in from torch (computed
  over the whole sequence in one vectorised call: ``exp`` inside the loop would stop LLVM from
  vectorising it). The gradients agree with autograd through the step loop to round-off.

Arrays are 2-D ``(T, N)`` or 1-D ``(N,)``, C-contiguous, ``N`` the neurons of one step;
``consts`` is ``(1, a, b, v_th, surrogate scale)`` in the tensors' dtype (float32 stays
float32). The per-step loops are branch-free so that LLVM vectorises them; no two arrays passed
to one call share memory (aliasing would make LLVM's runtime check fall back to scalar code).
"""

from __future__ import annotations

from ..._jit import njit

__all__ = ["forward_sequence", "backward_sequence"]


@njit
def _stc_forward_row(cur, h, consts, hs, s):
    one, a, b, v_th = consts[0], consts[1], consts[2], consts[3]
    zero = one - one
    for q in range(h.shape[0]):
        x = a * h[q]
        x = x + b * cur[q]
        spike = one if x >= v_th else zero
        hs[q] = x
        s[q] = spike
        h[q] = x - spike * v_th


@njit
def _fang_forward_row(cur, h, consts, hs, s):
    one, a, v_th = consts[0], consts[1], consts[3]
    zero = one - one
    for q in range(h.shape[0]):
        h_q = h[q]
        x = h_q + (cur[q] - h_q) * a
        spike = one if x >= v_th else zero
        hs[q] = x
        s[q] = spike
        h[q] = x - spike * v_th


@njit
def forward_sequence(fang, cur, h, consts, hs, s):
    """All ``T`` steps: ``cur`` ``(T, N)``; ``h`` ``(N,)`` the initial membrane, overwritten
    with the final one; writes the spikes ``s`` ``(T, N)`` and every charged membrane ``H_s``
    into ``hs`` ``(K, N)``, row ``t % K`` (``K = 1``: a scratch row, when nothing is kept)."""
    n_keep = hs.shape[0]
    for t in range(cur.shape[0]):
        if fang:
            _fang_forward_row(cur[t], h, consts, hs[t % n_keep], s[t])
        else:
            _stc_forward_row(cur[t], h, consts, hs[t % n_keep], s[t])


@njit
def _stc_backward_row(sig_gi, hs_prev, s_prev, cur, g_s, carry, consts, acc_a, acc_b):
    one, a, b, v_th, scale = consts[0], consts[1], consts[2], consts[3], consts[4]
    for q in range(carry.shape[0]):
        c = carry[q]
        sig = sig_gi[q]
        ghs = c + (g_s[q] - c * v_th) * (scale * sig * (one - sig))     # dL/dH_s[t]
        sig_gi[q] = ghs * b                                             # dL/dI[t]
        acc_a[q] += ghs * (hs_prev[q] - s_prev[q] * v_th)               # H[t-1]
        acc_b[q] += ghs * cur[q]
        carry[q] = ghs * a                                              # dL/dH[t-1]


@njit
def _fang_backward_row(sig_gi, hs_prev, s_prev, cur, g_s, carry, consts, acc_a):
    one, a, v_th, scale = consts[0], consts[1], consts[3], consts[4]
    for q in range(carry.shape[0]):
        c = carry[q]
        sig = sig_gi[q]
        ghs = c + (g_s[q] - c * v_th) * (scale * sig * (one - sig))
        g_i = ghs * a
        sig_gi[q] = g_i
        acc_a[q] += ghs * (cur[q] - (hs_prev[q] - s_prev[q] * v_th))
        carry[q] = ghs - g_i


@njit
def backward_sequence(fang, sig_gi, hs, s, cur, h0, zeros, g_s, carry, consts, acc_a, acc_b):
    """The backward recurrence over all steps, ``t = T-1 … 0``.

    ``sig_gi`` ``(T, N)``: ``σ(scale (H_s - v_th))`` on entry, dL/dI on return; ``hs``, ``s``,
    ``cur`` ``(T, N)`` the forward's ``H_s``, spikes and input currents; ``h0`` the initial
    membrane and ``zeros`` a row of zeros (the membrane before step 0 is ``h0 - 0·v_th``);
    ``g_s`` ``(T, N)`` dL/dS, or ``(1, N)`` for one row used at every step (a gradient that is
    the same everywhere); ``carry`` ``(N,)`` dL/dH after the last step on entry, dL/dH0 on
    return; adds dL/da and (form "stc") dL/db per neuron to ``acc_a``, ``acc_b``."""
    n_steps = hs.shape[0]
    n_g = g_s.shape[0]
    for t in range(n_steps - 1, -1, -1):
        g_t = g_s[t if n_g > 1 else 0]
        if t > 0:
            hs_prev, s_prev = hs[t - 1], s[t - 1]
        else:
            hs_prev, s_prev = h0, zeros
        if fang:
            _fang_backward_row(sig_gi[t], hs_prev, s_prev, cur[t], g_t, carry, consts, acc_a)
        else:
            _stc_backward_row(sig_gi[t], hs_prev, s_prev, cur[t], g_t, carry, consts, acc_a,
                              acc_b)
