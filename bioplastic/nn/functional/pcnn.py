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

Whole sequences: :func:`pcnn_sequence` runs ``T`` steps of :func:`pcnn_step` as one autograd
node whenever every tensor has the drive's dtype and device (:func:`pcnn_sequence_applies`;
every reset, surrogate and coupling). Its forward pass does the same operations in the same
order as :func:`pcnn_step`, linking ``conv2d`` included (one call per step on the step's own
``(B, C, H, W)`` pulses: oneDNN's float32 sums depend on the batch size), so pulses and states
are bit-identical; it builds no graph and keeps per step only F before the reset, L and E:
the backward pass recomputes the gain ``1 + beta L``, ``z = U - E[t-1]`` and F after the
reset from them with the forward's own operations (so to the bit), which is cheaper on the
CPU than the page faults of three more fresh ``(T, ...)`` tensors. Products with the 0/1
pulses (``V_E Y``, ``Y E[t-1]``) are exact, so the forward pass fuses them into one
``addcmul`` without changing a bit. The backward pass is the chain rule written by hand, per
step from ``t = T-1`` down::

    g_Y   = g_spike[t] + K^T ⋆ g_c[t+1]  (- g_F E[t-1] | - g_F F~)     (reset, if any)
    g_Y  += V_E g_E ;   g_z = g_Y σ'(z)
    g_F~  = g_F (1 - Y if "zero_f") + g_z (1 + beta L)
    g_L~  = g_L + g_z F~ beta ;   g_c = V_L g_L~
    g_E[t-1] = d_E g_E - g_z (- g_F Y if "subtract_f");  g_L[t-1] = d_L g_L~
    g_F[t-1] = d_F g_F~ ;  g_I[t] = g_F~

``σ'`` is the surrogate derivative, ``K^T ⋆`` the linking conv's input gradient; the per-map
parameters collect their products per step and are summed once at the end, and the linking
kernel's gradient is accumulated step by step (one ``convolution_backward`` call per step
gives both the input and the weight gradient; a sequence starting without pulses, as from
the rest state, skips the first step's linking conv and its weight gradient, both zero). The
gradients equal autograd's through
:func:`pcnn_step` to round-off (tested in float64). The backward pass runs without a graph:
second derivatives through it are not available (use a loop of :func:`pcnn_step`).

On the CPU in float32 / float64, with each of the six parameters one value per map or one for
all maps (the layers' case), each step's elementwise chain runs as one compiled Numba loop
forward and one backward on NumPy views of the step's tensors (:mod:`._pcnn_fused`), instead
of about a dozen torch operations forward and twenty-five backward, each a pass over memory.
The forward loop does the step's operations in the step's order without fused multiply-adds,
so the pulses and states stay bit-identical to :func:`pcnn_step`; the backward loop also
accumulates the per-map parameter gradients over the batch, and ``V_L`` is folded into the
linking kernel for the conv's input and weight gradients. Elsewhere (another device or dtype,
per-neuron parameters, ``BIOPLASTIC_DISABLE_JIT=1``) the same steps run as torch operations.
Both paths are tested against the step loop.
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
from . import _pcnn_fused as _kernels
from ._fused import as_array, constants, kernels_apply, numpy_dtype
from .lif import _reduce_to

__all__ = ["PCNNTensorParams", "PCNNTensorState", "pcnn_prepare", "pcnn_initial_state",
           "pcnn_step", "pcnn_sequence", "pcnn_sequence_applies", "DPCNN_INIT", "RESETS"]

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



# ----------------------------------------------------------------------- whole sequences
def pcnn_sequence_applies(x: torch.Tensor, state: PCNNTensorState, params: PCNNTensorParams,
                          link_weight: torch.Tensor | None = None) -> bool:
    """Whether :func:`pcnn_sequence` can run this sequence ``x (T, B, C, H, W)``: every
    tensor of ``state``, ``params`` and ``link_weight`` has ``x``'s dtype and device, and
    the state tensors have the shape of one step (no broadcast state)."""
    if not isinstance(params, PCNNTensorParams) or x.ndim != 5:
        return False
    tensors = [*state, *params] + ([] if link_weight is None else [link_weight])
    if any(not isinstance(t, torch.Tensor) or t.dtype != x.dtype or t.device != x.device
           for t in tensors):
        return False
    return all(tuple(t.shape) == tuple(x.shape[1:]) for t in state)


def _slots(keep: bool, n_steps: int, like: torch.Tensor):
    """``slot(t)``: the buffer of step ``t`` — one (T, ...) tensor if ``keep`` (saved for the
    backward pass), else two per-step buffers used in turn."""
    if keep:
        whole = torch.empty((n_steps,) + tuple(like.shape), dtype=like.dtype, device=like.device)
        return whole, whole.__getitem__
    ring = (torch.empty_like(like), torch.empty_like(like))
    return None, lambda t: ring[t % 2]


def _pcnn_sequence_forward(x, f0, l0, e0, y0, params, link_weight, reset, *, keep: bool,
                           keep_link: bool = False, kernel_params=None, silent=None):
    """The forward loop (no graph). Each step does :func:`pcnn_step`'s operations in its
    order (two additions and one multiplication commuted, which is exact), into buffers
    owned by the call; the products with the 0/1 pulses (``V_E Y``, ``Y E``) are exact, so
    fusing them into one ``addcmul`` rounds as the step does. Only what the backward pass
    cannot recompute bit for bit is kept per step (F before the reset, L, E): the gain
    ``1 + beta L``, ``z = U - E[t-1]`` and F after the reset are recomputed from those with
    the same operations (every fresh ``(T, ...)`` tensor costs page faults on the CPU, more
    than the recomputation). With ``kernel_params`` (:func:`_kernel_params`) the elementwise
    chain of each step is one Numba pass (:func:`._pcnn_fused.forward_step`, same rounding).
    Returns spikes, the kept F, L, E and the linking conv ``K ⋆ Y[t-1]`` (``None`` unless
    ``keep``; the conv only if ``keep_link``) and the final F, L, E."""
    d_f, d_l, d_e, v_l, v_e, beta = params
    n_steps = x.shape[0]
    spikes = torch.empty_like(x)
    f_pre, f_pre_at = _slots(keep, n_steps, f0)
    f_post_at = f_pre_at if reset is None else _slots(False, n_steps, f0)[1]
    l_all, l_at = _slots(keep, n_steps, l0)
    e_all, e_at = _slots(keep, n_steps, e0)
    c_all = torch.empty_like(x) if keep_link and link_weight is not None else None
    gain, z = torch.empty_like(f0), torch.empty_like(f0)
    f, l, e, y = f0, l0, e0, y0
    silent = silent_start(y0, link_weight) if silent is None else silent

    def link(t, y):
        # no pulse before the sequence (the usual start): the first conv is +0 everywhere,
        # as oneDNN's conv of zeros gives, so it is not computed
        return torch.zeros_like(y0) if t == 0 and silent else link_input(y, link_weight)

    for t in range(n_steps):
        fp, lt, et = f_pre_at(t), l_at(t), e_at(t)
        if kernel_params is not None:     # the step's elementwise chain in one pass
            c = None if link_weight is None else link(t, y)
            if c_all is not None:
                c_all[t].copy_(c)
            _forward_kernel(x[t], f, l, e, c, kernel_params, reset, fp, lt, spikes[t], et,
                            f_post_at(t))
            f, l, e, y = f_post_at(t), lt, et, spikes[t]
            continue
        torch.mul(d_f, f, out=fp)
        fp.add_(x[t])                                   # F = d_F F + I
        torch.mul(d_l, l, out=lt)
        if link_weight is not None:
            c = link(t, y)
            if c_all is not None:
                c_all[t].copy_(c)
            lt.add_(c.mul_(v_l))                         # L = d_L L + V_L (K ⋆ Y)
        _gain(beta, lt, gain)
        _spike_argument(fp, gain, e, z)                 # z = U - E[t-1], U = F (1 + beta L)
        yt = spikes[t]
        torch.gt(z, 0, out=yt)                          # 0/1 in x's dtype
        torch.mul(d_e, e, out=et)
        et.addcmul_(v_e, yt)                            # E = d_E E + V_E Y
        if reset is not None:
            _reset(reset, fp, yt, e, f_post_at(t))
        f, l, e, y = f_post_at(t), lt, et, yt
    if keep:   # the final state must not alias what the backward pass reads
        f = f.clone() if reset is None else f   # a reset's F is already a buffer of its own
        l, e = l.clone(), e.clone()
    return spikes, (f_pre, l_all, e_all, c_all), (f, l, e)


def silent_start(y0: torch.Tensor, link_weight: torch.Tensor | None) -> bool:
    """Whether the first linking conv may be skipped: a kernel whose output has ``y0``'s
    shape (odd sizes) and no pulse in ``y0``. Its output is then zero, and so is its part
    of the kernel's gradient (one fewer conv forward and weight gradient per sequence)."""
    return (link_weight is not None and all(k % 2 for k in link_weight.shape[2:])
            and not bool(y0.any()))


def _gain(beta, lt, out):
    """``1 + beta L`` as :func:`pcnn_step` rounds it (into ``out``)."""
    torch.mul(beta, lt, out=out)
    return out.add_(1.0)


def _spike_argument(fp, gain, e_prev, out):
    """``F (1 + beta L) - E[t-1]`` as :func:`pcnn_step` rounds it (into ``out``)."""
    torch.mul(fp, gain, out=out)
    return out.sub_(e_prev)


def _reset(reset, fp, y, e_prev, out):
    """F after the reset (into ``out``), rounded as :func:`pcnn_step`: ``Y E[t-1]`` is exact
    (``Y`` is 0 or 1), so ``F - Y E`` is one ``addcmul``; ``1 - Y`` is exact too."""
    if reset == "subtract_f":
        return torch.addcmul(fp, y, e_prev, value=-1.0, out=out)
    torch.neg(y, out=out).add_(1.0)
    return out.mul_(fp)


def _conv_backward(grad, y, weight, want_input: bool, grad_w):
    """The linking conv's input gradient (if ``want_input``, else ``None``); its weight
    gradient, if ``grad_w`` is a tensor, is added to ``grad_w`` — per step, in the same call
    (cheaper here than one weight-gradient conv over all T·B frames, which also needs a
    (T, ...) copy of the pulses)."""
    groups = y.shape[1] if weight.shape[1] == 1 else 1
    padding = [weight.shape[2] // 2, weight.shape[3] // 2]
    mask = [want_input, grad_w is not None, False]
    if not any(mask):
        return None
    g_in, g_w, _ = torch.ops.aten.convolution_backward(
        grad, y, weight, None, [1, 1], padding, [1, 1], False, [0, 0], groups, mask)
    if grad_w is not None:
        grad_w.add_(g_w)
    return g_in


def _slope(derivative, surrogate: str, z, scale: float, out):
    """The surrogate derivative at ``z``, divided by ``scale`` for the sigmoid (which the
    caller folds into the products that use it), in place in ``out`` (which may be ``z``):
    no fresh tensors, each costs page faults. The sigmoid's ``s (1 - s)`` as ``s - s s``.
    Returns the derivative and the factor left to multiply it by."""
    if surrogate != "sigmoid":
        return derivative(z, scale), 1.0
    torch.mul(z, scale, out=out)
    out.sigmoid_()
    return out.addcmul_(out, out, value=-1.0), scale



# ------------------------------------------------- the Numba path of the whole sequence
def _per_map(p: torch.Tensor, channels: int) -> bool:
    """Whether ``p`` broadcasts against ``(B, C, H, W)`` as one value or one per map."""
    if p.ndim > 4:
        return False
    return p.numel() == 1 or (1,) * (4 - p.ndim) + tuple(p.shape) == (1, channels, 1, 1)


def _kernel_params(x, state, params, link_weight):
    """``(p, consts)`` for :mod:`._pcnn_fused`: the six per-map parameters ``(8, C)`` (rows 6
    and 7 the gradient factors ``d_F``, ``d_L``) and ``(1,)``, in ``x``'s dtype; or ``None``
    where its kernels do not apply (off the CPU, another dtype, per-neuron parameters, Numba
    disabled with ``BIOPLASTIC_DISABLE_JIT=1``): then the torch operations run."""
    channels = x.shape[2]
    if x.shape[0] == 0 or not kernels_apply(x, *state, *params, link_weight) or not all(
            _per_map(p, channels) for p in params):
        return None
    p = np.empty((8, channels), dtype=numpy_dtype(x.dtype))
    for i, value in enumerate(params):
        p[i] = value.detach().reshape(-1).numpy()      # one value broadcasts to every map
    p[6], p[7] = p[0], p[1]
    return p, constants([1.0], x.dtype)


def _rows(t: torch.Tensor) -> tuple[int, int]:
    """The kernels' 2-D shape ``(B·C, H·W)`` of a step tensor ``(B, C, H, W)``."""
    return t.shape[0] * t.shape[1], t.shape[2] * t.shape[3]


def _forward_kernel(x_t, f, l, e, c, kernel_params, reset, fp, lt, y, et, f_post):
    """:func:`._pcnn_fused.forward_step` on views of the step's tensors."""
    p, consts = kernel_params
    rows = _rows(fp)
    f, x_t, l, e = (as_array(t, rows) for t in (f, x_t, l, e))
    fp, lt, y, et, f_post = (as_array(t, rows, write=True) for t in (fp, lt, y, et, f_post))
    _kernels.forward_step(f, x_t, l, l if c is None else as_array(c, rows), e, p, consts,
                          c is not None, _kernels.RESET_CODES[reset], fp, lt, y, et, f_post)


def _fused_backward(saved, grads_out, needs, options, kernel_params, silent: bool):
    """:class:`_PCNNSequence`'s backward pass with each step's elementwise chain in one Numba
    pass (:func:`._pcnn_fused.backward_step`). ``V_L`` is folded into the linking kernel for
    the conv's input gradient (``K^T ⋆ (V_L g) = (V_L K)^T ⋆ g``) and into the kernel's
    gradient at the end, so the kernel writes ``g_L`` only. Returns the gradients of
    :meth:`_PCNNSequence.backward`'s inputs up to the linking kernel."""
    (f0, l0, e0, y0, d_f, d_l, d_e, v_l, v_e, beta, weight, spikes, f_pre, l_all, e_all,
     c_all) = saved
    grad_spikes, grad_f, grad_l, grad_e = grads_out
    reset, surrogate, scale = options
    p_rest, _ = kernel_params
    p_last = p_rest.copy()
    p_last[6:] = 1.0                   # the last step's carries are the loss's own
    n_steps = spikes.shape[0]
    rows = _rows(f0)

    def view(t, write=False):
        return as_array(t, rows, write=write)

    zeros = torch.zeros_like(f0)
    grad_f, grad_l, grad_e = (zeros if g is None else g for g in (grad_f, grad_l, grad_e))
    sigmoid = surrogate == "sigmoid"
    consts = constants([1.0, reset == "subtract_f", reset == "zero_f", scale if sigmoid else 0.0,
                        0.0 if sigmoid else 1.0, scale if sigmoid else 1.0, 1.0], f0.dtype)
    consts_last = consts.copy()
    consts_last[6] = 0.0
    acc = torch.zeros((6, f0.shape[1], rows[1]), dtype=f0.dtype)
    acc_np = acc.numpy()
    grad_x = torch.empty_like(spikes) if needs[0] else None
    gx_ring, glt_ring, ge_ring = ((torch.empty_like(f0), torch.empty_like(f0))
                                  for _ in range(3))
    s_buf, gs_buf = torch.empty_like(f0), torch.empty_like(f0)
    grad_w = torch.zeros_like(weight) if weight is not None and needs[11] else None
    if weight is not None:
        w_scaled = weight * _kernel_map(v_l, weight.ndim)
    derivative = None
    if not sigmoid:
        from ..surrogate import SURROGATES

        derivative = SURROGATES[surrogate]
    gx_next, glt_next, g_e, g_y = grad_f, grad_l, grad_e, None
    for t in range(n_steps - 1, -1, -1):
        y, fp, lt = spikes[t], f_pre[t], l_all[t]
        e_prev = e0 if t == 0 else e_all[t - 1]
        _kernels.spike_argument(view(fp), view(lt), view(e_prev), p_rest, consts,
                                view(s_buf, True))
        s_in = s_buf.sigmoid_() if sigmoid else derivative(s_buf, scale)
        gx = grad_x[t] if grad_x is not None else gx_ring[t % 2]
        glt, ge_out = glt_ring[t % 2], ge_ring[t % 2]
        last = t == n_steps - 1
        _kernels.backward_step(
            view(y), view(fp), view(lt), view(e_prev), view(s_in),
            view(zeros if grad_spikes is None else _contiguous(grad_spikes[t], gs_buf)),
            view(zeros if g_y is None else g_y), view(gx_next), view(glt_next), view(g_e),
            view(c_all[t] if c_all is not None else lt), p_last if last else p_rest,
            consts_last if last else consts, view(gx, True), view(glt, True),
            view(ge_out, True), acc_np)
        g_y = None
        if weight is not None:
            # a silent start adds nothing to the kernel's gradient
            g_y = _conv_backward(glt, y0 if t == 0 else spikes[t - 1], w_scaled,
                                 t > 0 or needs[4], None if t == 0 and silent else grad_w)
        gx_next, glt_next, g_e = gx, glt, ge_out
    for i, (g, first) in enumerate(((gx_next, f0), (glt_next, l0))):   # the decays at t = 0
        if needs[5 + i]:
            acc[i] += torch.mul(g, first).sum(dim=0).view(acc.shape[1:])
    params = (d_f, d_l, d_e, v_l, v_e, beta)
    grads = [_sum_to(acc[i], params[i]) if needs[5 + i] else None for i in range(6)]
    if needs[8] and c_all is None:      # V_L without a linking kernel: no effect
        grads[3] = torch.zeros_like(v_l)
    if grad_w is not None:
        grad_w.mul_(_kernel_map(v_l, weight.ndim))
    return (grad_x, torch.mul(gx_next, d_f) if needs[1] else None,
            torch.mul(glt_next, d_l) if needs[2] else None, g_e if needs[3] else None,
            g_y if needs[4] else None, *grads, grad_w)


def _contiguous(t: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
    """``t`` itself if contiguous, else copied into ``buf`` (e.g. the expanded gradient of a
    ``sum()``: no fresh tensor per step)."""
    return t if t.is_contiguous() else buf.copy_(t)


def _kernel_map(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-map (or single) parameter shaped to scale the linking kernel's output maps."""
    return value.reshape(-1, *(1,) * (ndim - 1))


def _sum_to(acc: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """A per-map accumulator ``(C, H·W)`` summed to ``param``'s shape (one value or one per
    map, :func:`_per_map`)."""
    per_map = acc.sum(dim=1)
    return (per_map if param.numel() == per_map.numel() else per_map.sum()).reshape(
        param.shape)


class _PCNNSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f0, l0, e0, y0, d_f, d_l, d_e, v_l, v_e, beta, link_weight, reset,
                surrogate, scale, kernel_params):
        params = (d_f, d_l, d_e, v_l, v_e, beta)
        keep_link = ctx.needs_input_grad[8]
        ctx.silent_start = silent_start(y0, link_weight)   # decided once, for both passes
        spikes, saved, final = _pcnn_sequence_forward(x, f0, l0, e0, y0, params, link_weight,
                                                      reset, keep=True, keep_link=keep_link,
                                                      kernel_params=kernel_params,
                                                      silent=ctx.silent_start)
        f_pre, l_all, e_all, c_all = saved
        ctx.save_for_backward(f0, l0, e0, y0, *params, link_weight, spikes, f_pre, l_all,
                              e_all, c_all)
        ctx.options = (reset, surrogate, scale)
        ctx.kernel_params = kernel_params
        return (spikes, *final)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_f, grad_l, grad_e):
        from ..surrogate import SURROGATES

        if ctx.kernel_params is not None:
            return (*_fused_backward(ctx.saved_tensors, (grad_spikes, grad_f, grad_l, grad_e),
                                     ctx.needs_input_grad, ctx.options, ctx.kernel_params,
                                     ctx.silent_start),
                    None, None, None, None)
        (f0, l0, e0, y0, d_f, d_l, d_e, v_l, v_e, beta, weight, spikes, f_pre, l_all,
         e_all, c_all) = ctx.saved_tensors
        reset, surrogate, scale = ctx.options
        derivative = SURROGATES[surrogate]
        need = ctx.needs_input_grad
        n_steps = spikes.shape[0]
        grad_x = torch.empty_like(spikes) if need[0] else None
        acc = {i: torch.zeros_like(f0) for i in range(5, 11) if need[i]}   # per-map params
        grad_w = torch.zeros_like(weight) if weight is not None and need[11] else None
        # carries: gradients at the state after step t (two buffers each, used in turn)
        g_f, g_l, g_e = grad_f.clone(), grad_l.clone(), grad_e.clone()
        g_y = None                                    # from the next step's linking conv
        silent = ctx.silent_start   # then the first step adds nothing to the kernel's gradient
        g_fp_buf = None if need[0] else (torch.empty_like(f0), torch.empty_like(f0))
        spare = {name: torch.empty_like(f0) for name in ("f", "l", "e")}
        g_y_now, g_u, g_lt, gain, slope = (torch.empty_like(f0) for _ in range(5))
        f_prev_buf = torch.empty_like(f0) if reset is not None and 5 in acc else None
        for t in range(n_steps - 1, -1, -1):
            y, fp, lt = spikes[t], f_pre[t], l_all[t]
            if t == 0:
                f_prev, l_prev, e_prev = f0, l0, e0
            else:   # F after step t-1's reset: recomputed as the forward pass rounded it
                l_prev, e_prev = l_all[t - 1], e_all[t - 1]
                f_prev = f_pre[t - 1]
                if f_prev_buf is not None:
                    f_prev = _reset(reset, f_prev, spikes[t - 1],
                                    e0 if t == 1 else e_all[t - 2], f_prev_buf)
            _gain(beta, lt, gain)                     # as the forward pass rounded them
            z = _spike_argument(fp, gain, e_prev, slope)
            if g_y is None:
                g_y_now.copy_(grad_spikes[t])
            else:
                torch.add(grad_spikes[t], g_y, out=g_y_now)
            g_fp = grad_x[t] if grad_x is not None else g_fp_buf[t % 2]
            g_e_prev = torch.mul(g_e, d_e, out=spare["e"])
            if reset == "subtract_f":                 # F = F~ - Y E[t-1]
                g_y_now.addcmul_(g_f, e_prev, value=-1.0)
                g_e_prev.addcmul_(g_f, y, value=-1.0)
            elif reset == "zero_f":                   # F = F~ (1 - Y)
                g_y_now.addcmul_(g_f, fp, value=-1.0)
            g_y_now.addcmul_(g_e, v_e)                # E = d_E E[t-1] + V_E Y
            if 7 in acc:
                acc[7].addcmul_(g_e, e_prev)
            if 9 in acc:
                acc[9].addcmul_(g_e, y)
            s, k = _slope(derivative, surrogate, z, scale, slope)
            g_z = g_y_now.mul_(s)                     # Y = H(z); the true g_z is k g_z
            g_e_prev.add_(g_z, alpha=-k)              # z = U - E[t-1]
            if reset == "zero_f":                     # U = F~ (1 + beta L)
                torch.addcmul(g_f, g_f, y, value=-1.0, out=g_fp)
                g_fp.addcmul_(g_z, gain, value=k)
            else:
                torch.addcmul(g_f, g_z, gain, value=k, out=g_fp)
            torch.mul(g_z, fp, out=g_u)               # dL/d(1 + beta L), over k
            torch.addcmul(g_l, g_u, beta, value=k, out=g_lt)
            if 10 in acc:
                acc[10].addcmul_(g_u, lt, value=k)
            g_l_prev = torch.mul(g_lt, d_l, out=spare["l"])   # L = d_L L[t-1] + V_L c
            if 6 in acc:
                acc[6].addcmul_(g_lt, l_prev)
            g_y = None
            if weight is not None:
                g_c = torch.mul(g_lt, v_l, out=g_u)
                if 8 in acc:
                    acc[8].addcmul_(g_lt, c_all[t])
                g_y = _conv_backward(g_c, y0 if t == 0 else spikes[t - 1], weight,
                                     t > 0 or need[4], None if t == 0 and silent else grad_w)
            g_f_prev = torch.mul(g_fp, d_f, out=spare["f"])   # F~ = d_F F[t-1] + I
            if 5 in acc:
                acc[5].addcmul_(g_fp, f_prev)
            spare["f"], spare["l"], spare["e"] = g_f, g_l, g_e
            g_f, g_l, g_e = g_f_prev, g_l_prev, g_e_prev
        params = (d_f, d_l, d_e, v_l, v_e, beta)
        grads = [_reduce_to(acc[i], params[i - 5].shape) if i in acc else None
                 for i in range(5, 11)]
        return (grad_x, g_f if need[1] else None, g_l if need[2] else None,
                g_e if need[3] else None, g_y if need[4] else None, *grads, grad_w,
                None, None, None, None)



def pcnn_sequence(x: torch.Tensor, state: PCNNTensorState, params: PCNNTensorParams,
                  link_weight: torch.Tensor | None = None, *, reset: str | None = None,
                  surrogate: str = "sigmoid", surrogate_scale: float = 4.0
                  ) -> tuple[torch.Tensor, PCNNTensorState]:
    """``T`` steps of :func:`pcnn_step` as one autograd node (module docstring).

    Parameters
    ----------
    x : tensor (T, B, C, H, W) — the drive of every step
    state : PCNNTensorState — before the first step, each tensor ``(B, C, H, W)``
    params : PCNNTensorParams
    link_weight : tensor (C, 1, kh, kw) or (C, C, kh, kw), optional
    reset, surrogate, surrogate_scale : as :func:`pcnn_step`

    Every tensor must have ``x``'s dtype and device (:func:`pcnn_sequence_applies`).

    Returns
    -------
    pulses : tensor like ``x`` (0/1), new_state : PCNNTensorState after the last step

    The pulses and the final state equal a loop of :func:`pcnn_step` bit for bit; the
    gradients (to ``x``, the initial state, the six per-map parameters and the linking
    kernel) equal autograd's through that loop to round-off.
    """
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    if not pcnn_sequence_applies(x, state, params, link_weight):
        raise ValueError("pcnn_sequence needs x (T, B, C, H, W) and state, params and "
                         "link_weight of x's dtype and device, the state shaped like one "
                         "step; use a loop of pcnn_step")
    from ..surrogate import SURROGATES

    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {surrogate!r}")
    if not surrogate_scale > 0:
        raise ValueError(f"surrogate_scale must be > 0, got {surrogate_scale!r}")
    # contiguous x and state (no-ops as a rule), so that every buffer allocated like them is
    # contiguous too: the kernels write into NumPy views of those buffers
    x, state = x.contiguous(), PCNNTensorState(*(t.contiguous() for t in state))
    inputs = (x, *state, *params, link_weight)
    kernel_params = _kernel_params(x, state, params, link_weight)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        spikes, f, l, e = _PCNNSequence.apply(*inputs, reset, surrogate,
                                              float(surrogate_scale), kernel_params)
    else:
        spikes, _, (f, l, e) = _pcnn_sequence_forward(x, *state, params, link_weight, reset,
                                                      keep=False, kernel_params=kernel_params)
    return spikes, PCNNTensorState(f, l, e, spikes[-1])
