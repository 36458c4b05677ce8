"""Brian2 twin of :mod:`bioplastic.neurons.stc` (the dense / 1×1 STC layer, no GroupNorm).

The STC neuron is a map, so the twin has no state updater: the variables are plain
dimensionless parameters and one ``run_regularly(when='groups', order=0)`` executes the map's
statements in order (they run sequentially, a later line sees the earlier assignments)::

    alpha = 1 + tanh(gA + a)
    beta = 1 + tanh(gB + b)
    H = alpha*H + beta*I_in(t, i)                        # base "lif"
    ka = kh*alpha ; kb = ki*beta ; H = ka*H + kb*I_in(t, i)   # base "plif"
    D = cdu*D + csu*H ; D = D + beta*I_in(t, i)          # base "lmh" ...
    H = alpha*H ; H = cdp*D + csp*H                      # ... (D reads the un-gated H)
    S = int(H >= vth)
    H = H - vth*S

Every statement has at most two operands per operation, so sympy's reordering of sums and
products (commutative, hence exact) cannot change a bit; the multi-factor products are split
into ``ka``/``kb`` for the same reason. The modulator sums ``gA``, ``gB`` are ``(summed)``
variables of one ``Synapses(G, G)`` object (``gA_post = A*S_pre``) whose updaters run in
``groups`` at order −1, before the map, so they read the previous step's spikes S (0 at the
start). Synapses are the union of the non-zero entries of A_h and A_v, created with
``connect(i=pre, j=post)`` sorted by ``(pre, post)`` — autapses are ``i == j`` entries — so the
numpy target's ``bincount`` sums each neuron's terms in increasing presynaptic order, as the
kernel does. ``tanh`` is NumPy's on both sides. The input current ``I[t]`` is a
``TimedArray`` (row k = step k); constants (thresholds, biases, sigmoid factors) are
per-neuron ``(constant)`` parameters holding the kernel's own numbers.

Recording: ``threshold='S > 0.5'`` with an empty reset feeds a ``SpikeMonitor`` (the
thresholder runs after ``groups`` and sees this step's S); ``StateMonitor(when='end')``
records post-reset values. Brian step k is kernel step k (``simulate``'s row k).
"""

from __future__ import annotations

import numpy as np

from ..neurons.stc import STCParams, dense_modulators, run_stc, stc_prepare
from ._brian import exact_prefs, network, recorded, run_network, scheduling_summary, spike_pairs
from ._cases import TwinCase, TwinResult

__all__ = ["EQUATIONS", "map_code", "run_stc_twin", "run_stc_kernel", "CASES"]

EQUATIONS = """
H : 1
D : 1
S : 1
alpha : 1
beta : 1
ka : 1
kb : 1
gA : 1
gB : 1
vth : 1 (constant)
a : 1 (constant)
b : 1 (constant)
kh : 1 (constant)
ki : 1 (constant)
cdu : 1 (constant)
csu : 1 (constant)
cdp : 1 (constant)
csp : 1 (constant)
"""
_GATES = "alpha = 1 + tanh(gA + a)\nbeta = 1 + tanh(gB + b)\n"
_UPDATE = {
    "lif": "H = alpha*H + beta*I_in(t, i)\n",
    "plif": "ka = kh*alpha\nkb = ki*beta\nH = ka*H + kb*I_in(t, i)\n",
    "lmh": "D = cdu*D + csu*H\nD = D + beta*I_in(t, i)\nH = alpha*H\nH = cdp*D + csp*H\n",
}
_FIRE = "S = int(H >= vth)\nH = H - vth*S"
_RECORDED = ("H", "D", "alpha", "beta")


def map_code(base: str) -> str:
    """The ``run_regularly`` statements for base neuron ``base``."""
    return _GATES + _UPDATE[base] + _FIRE


def _group(b2, params: STCParams, n: int, dt):
    kp = stc_prepare(params, n)
    group = b2.NeuronGroup(n, EQUATIONS, threshold="S > 0.5", reset="", dt=dt, name="stc",
                           order=0)
    for brian_name, field in (("vth", "v_th"), ("a", "bias_h"), ("b", "bias_v"), ("kh", "k_h"),
                              ("ki", "k_i"), ("cdu", "c_du"), ("csu", "c_su"), ("cdp", "c_dp"),
                              ("csp", "c_sp")):
        setattr(group, brian_name, getattr(kp, field))
    group.alpha = 1.0
    group.beta = 1.0
    group.run_regularly(map_code(params.base), when="groups", order=0, name="stc_map")
    return group


def modulator_synapses(w_h, w_v, n: int):
    """The twin's synapses: one per pair with a non-zero ``A_h`` or ``A_v`` weight, ordered by
    ``(pre, post)`` (Brian2's summed variables then add each neuron's terms in increasing
    presynaptic order, as the kernel does). Returns ``(pre, post, A, B)``."""
    dense = [np.zeros((n, n)) if w is None else w for w in dense_modulators(w_h, w_v, n)]
    # column-major scan of the (n_post, n_pre) matrices: entries ordered by (pre, post)
    pre, post = np.nonzero(((dense[0] != 0.0) | (dense[1] != 0.0)).T)
    return pre, post, dense[0][post, pre], dense[1][post, pre]


def _modulators(b2, group, w_h, w_v, n: int, dt):
    pre, post, a, b = modulator_synapses(w_h, w_v, n)
    if post.size == 0:
        return []
    syn = b2.Synapses(group, group, "A : 1 (constant)\nB : 1 (constant)\n"
                      "gA_post = A*S_pre : 1 (summed)\ngB_post = B*S_pre : 1 (summed)",
                      dt=dt, name="modulators")
    syn.connect(i=pre, j=post)
    syn.A = a
    syn.B = b
    return [syn]


def run_stc_twin(params: STCParams, current: np.ndarray, w_h=None, w_v=None, *,
                 record_idx=None, timing: dict | None = None) -> TwinResult:
    """Run the twin on ``current (T, n)``: spikes, recorded H/D/alpha/beta and final state.

    ``record_idx``: neuron indices to record traces for (default all). ``timing``: see
    :func:`bioplastic.reference._brian.run_network`.
    """
    n_steps, n = current.shape
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    with exact_prefs("numpy") as b2:
        dt = 1.0 * b2.ms
        group = _group(b2, params, n, dt)
        synapses = _modulators(b2, group, w_h, w_v, n, dt)
        state_mon = b2.StateMonitor(group, list(_RECORDED), record=record_idx, when="end",
                                    name="state_monitor")
        spike_mon = b2.SpikeMonitor(group, name="spike_monitor")
        net = network(group, *synapses, state_mon, spike_mon)
        namespace = {"I_in": b2.TimedArray(np.ascontiguousarray(current, dtype=np.float64),
                                           dt=dt)}
        run_network(net, n_steps, dt, namespace=namespace, timing=timing)
        steps, index = spike_pairs(spike_mon, float(dt))
        state = {name: recorded(state_mon, name) for name in _RECORDED}
        state.update({f"{name}_final": np.array(getattr(group, name)[:]) for name in ("H", "D")})
        schedule = scheduling_summary(net)
    return TwinResult(steps, index, state, schedule)


def run_stc_kernel(params: STCParams, current: np.ndarray, w_h=None, w_v=None, *,
                   record_idx=None) -> TwinResult:
    """The same run through :func:`bioplastic.neurons.run_stc`, in the comparison form."""
    n = current.shape[1]
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    trace = run_stc(current, params, w_h=w_h, w_v=w_v, record=("h", "d", "alpha", "beta"),
                    record_units=record_idx)
    steps, index = trace.spike_pairs()
    state = {name: trace[name.lower()] for name in _RECORDED}
    state.update({"H_final": trace.state.h.copy(), "D_final": trace.state.d.copy()})
    return TwinResult(steps, index, state)


# ------------------------------------------------------------------------------------ cases


def random_case(seed: int, base: str = "lif", n: int = 64, n_steps: int = 1000,
                density: float = 0.15) -> dict:
    """Random sparse modulators (every autapse present), random biases and PLIF / LM-H
    constants, a positive random current: firing rates between roughly 0.1 and 0.6."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, n)) < density) | np.eye(n, dtype=bool)
    inputs = {
        "base": np.array(base),
        "w_h": rng.normal(0.0, 0.5, (n, n)) * mask,
        "w_v": rng.normal(0.0, 0.5, (n, n)) * (rng.random((n, n)) < density),
        "bias_h": rng.uniform(-0.5, 0.1, n), "bias_v": rng.uniform(-0.3, 0.3, n),
        "v_th": np.ones(n),
        "plif_w": rng.uniform(-1.0, 1.0, n),
        "lmh": rng.uniform(-1.0, 1.0, (4, n)),
        "current": rng.uniform(0.0, 0.8 if base == "lif" else 1.5, (n_steps, n)),
        "record_idx": np.arange(0, n, 8),
    }
    return inputs


def threshold_case(seed: int, n: int = 16, n_steps: int = 1000) -> dict:
    """Zero modulator weights and biases and dyadic currents ``k/16``: H = t*I lands exactly on
    the threshold 1.0 whenever ``t*k`` is a multiple of 16, and fires there only because the
    test is ``>=`` (spec'd spike counts ``floor(t*k/16)``)."""
    rng = np.random.default_rng(seed)
    return {
        "base": np.array("lif"), "w_h": np.zeros((n, n)), "w_v": np.zeros((n, n)),
        "bias_h": np.zeros(n), "bias_v": np.zeros(n), "v_th": np.ones(n),
        "plif_w": np.zeros(n), "lmh": np.zeros((4, n)),
        "current": np.broadcast_to(rng.integers(1, 16, n) / 16.0, (n_steps, n)).copy(),
        "record_idx": np.arange(n),
    }


def unpack(inputs: dict) -> tuple[STCParams, np.ndarray, np.ndarray, np.ndarray]:
    """A case dict as ``(params, current (T, n), w_h, w_v)``."""
    lmh = inputs["lmh"]
    params = STCParams(base=str(inputs["base"]), v_th=inputs["v_th"], bias_h=inputs["bias_h"],
                       bias_v=inputs["bias_v"], plif_w=inputs["plif_w"], lmh_d_u=lmh[0],
                       lmh_s_u=lmh[1], lmh_d_p=lmh[2], lmh_s_p=lmh[3])
    return params, np.ascontiguousarray(inputs["current"]), inputs["w_h"], inputs["w_v"]


def _kernel_case(inputs: dict) -> TwinResult:
    params, current, w_h, w_v = unpack(inputs)
    return run_stc_kernel(params, current, w_h, w_v, record_idx=inputs["record_idx"])


def _twin_case(inputs: dict) -> TwinResult:
    params, current, w_h, w_v = unpack(inputs)
    return run_stc_twin(params, current, w_h, w_v, record_idx=inputs["record_idx"])


def _case(name, description, make, seed):
    return TwinCase(name=name, model="stc", tier="T0", description=description, make=make,
                    kernel=_kernel_case, twin=_twin_case, seed=seed,
                    n_units=lambda inputs: inputs["current"].shape[1],
                    n_steps=lambda inputs: inputs["current"].shape[0])


CASES = (
    _case("stc_lif_random", "STC-LIF, 64 neurons, random sparse A_h (all autapses) and A_v, "
          "random gate biases, 1,000 steps", lambda s: random_case(s, "lif"), 20261201),
    _case("stc_plif_random", "STC-PLIF, 64 neurons, random modulators, per-neuron sigmoid(w), "
          "1,000 steps", lambda s: random_case(s, "plif"), 20261202),
    _case("stc_lmh_random", "STC-LMH, 64 neurons, random modulators and LM-H constants, "
          "1,000 steps", lambda s: random_case(s, "lmh"), 20261203),
    _case("stc_threshold", "STC-LIF with zero modulators and dyadic currents k/16: H lands "
          "exactly on the threshold (pins >=), 1,000 steps", threshold_case, 20261204),
)
