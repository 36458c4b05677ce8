"""Brian2 twin of :mod:`bioplastic.neurons.lif`.

Voltages are dimensionless numbers *in mV* in the twin (``v : 1``), while times carry real
units (``tau_m : second``). Brian2 stores quantities in SI units, so a twin in volts would hold
``v*0.001`` and round differently from the kernel in the last bit; keeping the kernel's numbers
makes bit-identity possible, and Brian2's dimension checker still checks every time constant.

Exactness (``docs/twinning.md``): numpy target, loop-invariant optimisations off,
``method='exact'`` (printed update ``((v*e + v_rest) + ((-v_rest) - I_ext)*e) + I_ext``, which
the kernel copies), ``refractory='t_ref'``, strict ``>`` threshold, synapses created with
``connect(i=, j=)`` from the kernel's own CSR arrays, delays in whole steps, external drive
through a ``TimedArray`` indexed ``I_ext(t, i)``, ``StateMonitor(when='end')`` so records are
post-reset like the kernel's. Index offset: Brian step ``n`` is kernel step ``n``.
"""

from __future__ import annotations

import numpy as np

from .._validate import unitless_params
from ..neurons.connectivity import SparseConnectivity, connectivity_from_arrays
from ..neurons.lif import LIFParams, lif_advance, lif_init, lif_prepare
from ..simulate import simulate
from ._brian import (
    exact_prefs,
    network,
    recorded,
    run_network,
    scheduling_summary,
    spike_pairs,
)
from ._cases import TwinCase, TwinResult

__all__ = ["EQUATIONS", "THRESHOLD", "RESET", "ON_PRE", "run_lif_twin", "CASES"]

EQUATIONS = """
dv/dt = (v_rest + I_ext(t, i) - v)/tau_m : 1 (unless refractory)
dtheta/dt = -theta/tau_theta : 1
v_rest : 1 (constant)
v_reset : 1 (constant)
v_th : 1 (constant)
theta_plus : 1 (constant)
tau_m : second (constant)
tau_theta : second (constant)
t_ref : second (constant)
"""
THRESHOLD = "v > v_th + theta"
RESET = "v = v_reset\ntheta += theta_plus"
ON_PRE = "v_post += w"


def _build(b2, params: LIFParams, drive: np.ndarray, conn: SparseConnectivity, v0_mv,
           record_idx, dt):
    n = drive.shape[1]
    group = b2.NeuronGroup(n, EQUATIONS, threshold=THRESHOLD, reset=RESET, refractory="t_ref",
                           method="exact", dt=dt, name="lif", order=0)
    for name, value in (("v_rest", params.v_rest_mv), ("v_reset", params.v_reset_mv),
                        ("v_th", params.v_th_mv), ("theta_plus", params.theta_plus_mv)):
        setattr(group, name, np.broadcast_to(np.asarray(value, float), (n,)))
    group.tau_m = np.broadcast_to(np.asarray(params.tau_m_ms, float), (n,)) * b2.ms
    group.tau_theta = np.broadcast_to(np.asarray(params.tau_theta_ms, float), (n,)) * b2.ms
    group.t_ref = np.broadcast_to(np.asarray(params.t_ref_ms, float), (n,)) * b2.ms
    group.v = lif_init(n, params, v0_mv=v0_mv).v
    objects = [group]
    if conn.n_synapses:
        syn = b2.Synapses(group, group, "w : 1 (constant)", on_pre=ON_PRE, dt=dt,
                          name="recurrent", order=0)
        syn.connect(i=conn.pre(), j=conn.post)
        syn.w = conn.weight
        syn.delay = conn.delay_steps * dt
        objects.append(syn)
    state_mon = b2.StateMonitor(group, ["v", "theta"], record=record_idx, when="end",
                                name="state_monitor")
    spike_mon = b2.SpikeMonitor(group, name="spike_monitor")
    return objects + [state_mon, spike_mon], state_mon, spike_mon


def run_lif_twin(params: LIFParams, drive: np.ndarray, conn: SparseConnectivity, *,
                 v0_mv=None, record_idx=None, target: str = "numpy",
                 timing: dict | None = None) -> TwinResult:
    """Run the twin; returns spikes, recorded ``v``/``theta`` traces and final ``v``/``theta``.

    ``drive`` (T, n) is the external input in mV, ``conn`` the recurrent synapses. With a
    ``timing`` dict, the first step runs alone (code generation, compilation, spike-queue set-up)
    and ``timing["seconds"]`` receives the wall time of the remaining ``T - 1`` steps.
    """
    n_steps, n = drive.shape
    params = unitless_params(params)          # Brian2 quantities -> floats in the named units
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    with exact_prefs(target) as b2:
        dt = params.dt_ms * b2.ms
        namespace = {"I_ext": b2.TimedArray(drive, dt=dt)}
        objects, state_mon, spike_mon = _build(b2, params, drive, conn, v0_mv, record_idx, dt)
        net = network(*objects)
        run_network(net, n_steps, dt, namespace=namespace, timing=timing)
        steps, index = spike_pairs(spike_mon, float(dt))
        group = objects[0]
        state = {"v": recorded(state_mon, "v"), "theta": recorded(state_mon, "theta"),
                 "v_final": np.array(group.v[:]), "theta_final": np.array(group.theta[:])}
        schedule = scheduling_summary(net)
    return TwinResult(steps, index, state, schedule)


def run_lif_kernel(params: LIFParams, drive: np.ndarray, conn: SparseConnectivity, *,
                   v0_mv=None, record_idx=None) -> TwinResult:
    """The same run through :func:`bioplastic.simulate`, in the comparison form."""
    n = drive.shape[1]
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    state = lif_init(n, params, conn, v0_mv=v0_mv)
    trace = simulate(lif_advance, drive, state, lif_prepare(params, n), conn, record=("v", "theta"),
                     record_units=record_idx)
    steps, index = trace.spike_pairs()
    state = {"v": trace["v"], "theta": trace["theta"],
             "v_final": trace.state.v, "theta_final": trace.state.theta}
    return TwinResult(steps, index, state)


def random_network(seed: int, n: int = 1000, n_steps: int = 1000, p: float = 0.02,
                   max_delay_steps: int = 3, dt_ms: float = 0.1) -> dict:
    """Heterogeneous recurrent network with pre-drawn drive (the validation workload).

    Drive: a per-neuron mean in [12, 18] mV around the 15 mV that reaches the mean threshold
    (v_th - v_rest = 15 mV), so many neurons sit near threshold, plus 2 mV per-step noise.
    """
    rng = np.random.default_rng(seed)
    n_syn = rng.binomial(n * n, p)
    flat = rng.choice(n * n, size=n_syn, replace=False)
    return {
        "tau_m_ms": rng.uniform(5.0, 20.0, n),
        "v_rest_mv": np.full(n, -65.0),
        "v_reset_mv": rng.uniform(-70.0, -65.0, n),
        "v_th_mv": -50.0 + rng.normal(0.0, 1.0, n),
        "t_ref_ms": rng.integers(0, 30, n) * dt_ms,
        "tau_theta_ms": rng.uniform(20.0, 100.0, n),
        "theta_plus_mv": rng.uniform(0.0, 1.0, n),
        "dt_ms": np.float64(dt_ms),
        "drive": rng.uniform(12.0, 18.0, n) + rng.normal(0.0, 2.0, (n_steps, n)),
        "v0_mv": rng.uniform(-70.0, -50.0, n),
        "pre": flat % n,
        "post": flat // n,
        "weight": rng.normal(0.0, 1.0, n_syn),
        "delay_steps": rng.integers(0, max_delay_steps + 1, n_syn),
        "record_idx": np.arange(0, n, max(1, n // 50)),
    }


def unpack(inputs: dict) -> tuple[LIFParams, np.ndarray, SparseConnectivity]:
    """Turn a ``random_network`` dict into (params, drive, connectivity)."""
    n = inputs["drive"].shape[1]
    dt_ms = float(inputs["dt_ms"])
    params = LIFParams(**{f: inputs[f] for f in LIFParams._fields if f != "dt_ms"}, dt_ms=dt_ms)
    conn = connectivity_from_arrays(inputs["pre"], inputs["post"], inputs["weight"], n, n,
                                    delay_ms=inputs["delay_steps"] * dt_ms, dt_ms=dt_ms)
    return params, inputs["drive"], conn


def _kernel_case(inputs: dict) -> TwinResult:
    params, drive, conn = unpack(inputs)
    return run_lif_kernel(params, drive, conn, v0_mv=inputs["v0_mv"],
                          record_idx=inputs["record_idx"])


def _twin_case(inputs: dict) -> TwinResult:
    params, drive, conn = unpack(inputs)
    return run_lif_twin(params, drive, conn, v0_mv=inputs["v0_mv"],
                        record_idx=inputs["record_idx"])


CASES = (
    TwinCase(
        name="lif_recurrent",
        model="lif",
        tier="T0",
        description="1,000 heterogeneous LIF neurons, 2 % recurrent synapses with 0-3 step "
                    "delays, adaptive threshold, refractory periods, 1,000 steps",
        make=random_network,
        kernel=_kernel_case,
        twin=_twin_case,
        seed=20261123,
        n_units=lambda inputs: inputs["drive"].shape[1],
        n_steps=lambda inputs: inputs["drive"].shape[0],
    ),
)
