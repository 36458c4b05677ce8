"""Brian2 twin of :mod:`bioplastic.neurons.wta` (Diehl & Cook 2015 lateral inhibition + STDP).

Built like Brian2's own ``examples/frompapers/Diehl_Cook_2015.py`` (re-implemented here, not
copied): two ``NeuronGroup`` s (``exc``, ``inh``), a ``SpikeGeneratorGroup`` of pre-drawn input
spikes, and three ``Synapses``: ``input_exc`` (plastic; event-driven traces), ``exc_inh``
(one-to-one) and ``inh_exc`` (all but the partner).

Exactness (``docs/twinning.md``): numpy target, loop-invariant optimisations off,
float64, ``method='euler'`` (the kernel copies the printed update term by term), every constant
a named namespace entry (voltages dimensionless in mV as in :mod:`bioplastic.reference.lif`,
times with units), strict ``>`` thresholds, Brian's refractory mechanism, input synapses created
with ``connect(i=, j=)`` from the kernel's own CSR arrays (so ``add.at`` accumulates ``ge`` in
the kernel's order), ``exc_inh``/``inh_exc`` sorted by ``(i, j)``, delays in whole steps,
monitors ``when='end'``. Index offset: Brian step ``n`` is kernel step ``n``. Spikes are
reported like the kernel's: excitatory ``0..n-1``, inhibitory ``n..2n-1``.

Tier T0. The event-driven decay ``exp(-(t - lastupdate)/tau)`` (and ``w**mu``) is evaluated by
NumPy's vectorised ``exp``/``power`` on the numpy target and by libm in the kernel; on CPUs where
NumPy dispatches its AVX-512 implementations the two may differ by one ulp, so state agrees to
float64 round-off rather than bit for bit (Brian's compiled targets use libm: bit for bit).
"""

from __future__ import annotations

import numpy as np

from .._validate import unitless_params
from ..neurons.connectivity import SparseConnectivity
from ..neurons.wta import (
    DEFAULT_PARAMS,
    DEFAULT_STDP,
    WTAParams,
    input_connectivity,
    poisson_spikes,
    wta_advance,
    wta_init,
    wta_prepare,
)
from ..rules.stdp import STDPParams, post_index
from ..simulate import simulate
from ._brian import exact_prefs, network, recorded, run_network, scheduling_summary, spike_pairs
from ._cases import TwinCase, TwinResult

__all__ = ["equations", "THRESHOLD_EXC", "THRESHOLD_INH", "RESET_EXC", "RESET_INH",
           "stdp_model", "stdp_on_pre", "stdp_on_post", "run_wta_twin", "run_wta_kernel",
           "CASES"]


def equations(conductance: bool, adaptive: bool) -> str:
    """One population's equations (Euler; ``I_syn`` by synapse kind)."""
    i_syn = "ge*(E_exc - v) + gi*(E_inh - v)" if conductance else "ge - gi"
    eqs = f"""
dv/dt = ((v_rest - v) + ({i_syn}))/tau_m : 1 (unless refractory)
dge/dt = -ge/tau_ge : 1
dgi/dt = -gi/tau_gi : 1
"""
    if adaptive:
        eqs += "dtheta/dt = -theta/tau_theta : 1\n"
    return eqs


THRESHOLD_EXC = "v > v_th + theta"
THRESHOLD_INH = "v > v_th"
RESET_EXC = "v = v_reset\ntheta += theta_plus"
RESET_INH = "v = v_reset"


def stdp_model(stdp: STDPParams) -> str:
    model = """w : 1
dpre/dt = -pre/tau_pre : 1 (event-driven)
dpost1/dt = -post1/tau_post1 : 1 (event-driven)
"""
    if stdp.triplet:
        model += "dpost2/dt = -post2/tau_post2 : 1 (event-driven)\n"
    return model


def _bump(trace: str, all_to_all: bool) -> str:
    return f"{trace} += 1.0" if all_to_all else f"{trace} = 1.0"


def stdp_on_pre(stdp: STDPParams) -> str:
    """``on_pre`` statements; the ``dw`` forms are those of :mod:`bioplastic.rules.stdp`."""
    dw = "(-(eta_pre*post1))"
    if stdp.mu_dep != 0:
        dw += "*(w**mu_dep)"
    return "\n".join(["ge_post += w", _bump("pre", stdp.all_to_all),
                      f"w = clip(w + {dw}, w_min, w_max)"])


def stdp_on_post(stdp: STDPParams) -> str:
    dw = "(eta_post*pre)"
    lines = []
    if stdp.triplet:
        lines.append("post2before = post2")
        dw = f"({dw}*post2before)"
    if stdp.mu_pot != 0:
        dw += "*((w_max - w)**mu_pot)"
    lines.append(f"w = clip(w + {dw}, w_min, w_max)")
    lines.append(_bump("post1", stdp.all_to_all))
    if stdp.triplet:
        lines.append(_bump("post2", stdp.all_to_all))
    return "\n".join(lines)


def _group_namespace(b2, params: WTAParams, kind: str, v_th: float) -> dict:
    namespace = {
        "v_rest": getattr(params, f"v_rest_{kind}_mv"),
        "v_reset": getattr(params, f"v_reset_{kind}_mv"),
        "v_th": v_th,
        "E_exc": getattr(params, f"e_exc_{kind}_mv"),
        "E_inh": getattr(params, f"e_inh_{kind}_mv"),
        "tau_m": getattr(params, f"tau_{kind}_ms") * b2.ms,
        "tau_ge": params.tau_ge_ms * b2.ms,
        "tau_gi": params.tau_gi_ms * b2.ms,
    }
    if kind == "exc":
        namespace.update(tau_theta=params.tau_theta_ms * b2.ms, theta_plus=params.theta_plus_mv)
    return {key: (float(v) if isinstance(v, int | float | np.floating) else v)
            for key, v in namespace.items()}


def _stdp_namespace(b2, stdp: STDPParams) -> dict:
    namespace = {"tau_pre": stdp.tau_pre_ms * b2.ms, "tau_post1": stdp.tau_post_ms * b2.ms,
                 "eta_pre": float(stdp.eta_pre), "eta_post": float(stdp.eta_post),
                 "w_min": float(stdp.w_min), "w_max": float(stdp.w_max)}
    if stdp.triplet:
        namespace["tau_post2"] = stdp.tau_post2_ms * b2.ms
    if stdp.mu_dep != 0:
        namespace["mu_dep"] = float(stdp.mu_dep)
    if stdp.mu_pot != 0:
        namespace["mu_pot"] = float(stdp.mu_pot)
    return namespace


def _populations(b2, params: WTAParams, n: int, dt, v0_mv, theta0_mv):
    kp = wta_prepare(params)
    exc = b2.NeuronGroup(n, equations(params.conductance, True), threshold=THRESHOLD_EXC,
                         reset=RESET_EXC, refractory=params.t_ref_exc_ms * b2.ms,
                         method="euler", dt=dt, name="exc", order=0,
                         namespace=_group_namespace(b2, params, "exc", kp.exc.v_th))
    inh = b2.NeuronGroup(n, equations(params.conductance, False), threshold=THRESHOLD_INH,
                         reset=RESET_INH, refractory=params.t_ref_inh_ms * b2.ms,
                         method="euler", dt=dt, name="inh", order=0,
                         namespace=_group_namespace(b2, params, "inh", kp.inh.v_th))
    exc.v = np.broadcast_to(np.asarray(params.v_rest_exc_mv if v0_mv is None else v0_mv,
                                       float), (n,))
    exc.theta = np.broadcast_to(np.asarray(theta0_mv, float), (n,))
    inh.v = params.v_rest_inh_mv
    return exc, inh


def _synapses(b2, params, stdp, conn, exc, inh, source, dt):
    n = exc.N
    plastic = b2.Synapses(source, exc, stdp_model(stdp), on_pre=stdp_on_pre(stdp),
                          on_post=stdp_on_post(stdp), dt=dt, name="input_exc", order=0,
                          namespace=_stdp_namespace(b2, stdp))
    plastic.connect(i=conn.pre(), j=conn.post)
    plastic.w = conn.weight
    plastic.delay = conn.delay_steps * dt
    exc_inh = b2.Synapses(exc, inh, on_pre="ge_post += w_ei", dt=dt, name="exc_inh", order=0,
                          namespace={"w_ei": float(params.w_ei)})
    exc_inh.connect(i=np.arange(n), j=np.arange(n))
    pre, post = np.nonzero(~np.eye(n, dtype=bool))   # all pairs but the partner, (i, j) sorted
    inh_exc = b2.Synapses(inh, exc, on_pre="gi_post += w_ie", dt=dt, name="inh_exc", order=0,
                          namespace={"w_ie": float(params.w_ie)})
    inh_exc.connect(i=pre, j=post)
    return plastic, exc_inh, inh_exc


def run_wta_twin(input_spikes: np.ndarray, conn: SparseConnectivity, n: int,
                 params: WTAParams = DEFAULT_PARAMS, stdp: STDPParams = DEFAULT_STDP, *,
                 v0_mv=None, theta0_mv=20.0, record_idx=None, record_syn=None,
                 target: str = "numpy", timing: dict | None = None) -> TwinResult:
    """Run the twin on pre-drawn ``input_spikes`` (T, n_in) bool.

    Returns spikes (exc ``0..n-1``, inh ``n..2n-1``), traces of ``v``, ``theta``, ``ge``,
    ``gi`` (neurons ``record_idx``; none if empty) and ``w`` (synapses ``record_syn``, CSR
    ids) after every step, and the final ``v``, ``theta``, ``w`` of all neurons and synapses.

    ``timing``: if a dict, the first step runs alone (code generation, compilation, set-up)
    and ``timing["seconds"]`` receives the wall time of the remaining ``T - 1`` steps.
    """
    n_steps, n_in = input_spikes.shape
    params, stdp = unitless_params(params), unitless_params(stdp)   # Brian2 quantities -> floats
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    record_syn = np.arange(0) if record_syn is None else np.asarray(record_syn)
    with exact_prefs(target) as b2:
        dt = params.dt_ms * b2.ms
        steps, index = np.nonzero(input_spikes)
        source = b2.SpikeGeneratorGroup(n_in, index, steps * dt, dt=dt, name="input")
        exc, inh = _populations(b2, params, n, dt, v0_mv, theta0_mv)
        plastic, exc_inh, inh_exc = _synapses(b2, params, stdp, conn, exc, inh, source, dt)
        monitors = {}
        if record_idx.size:
            monitors["exc"] = b2.StateMonitor(exc, ["v", "theta", "ge", "gi"],
                                              record=record_idx, when="end", name="exc_monitor")
        if record_syn.size:
            monitors["w"] = b2.StateMonitor(plastic, "w", record=record_syn, when="end",
                                            name="w_monitor")
        exc_spikes = b2.SpikeMonitor(exc, name="exc_spikes")
        inh_spikes = b2.SpikeMonitor(inh, name="inh_spikes")
        net = network(source, exc, inh, plastic, exc_inh, inh_exc, exc_spikes, inh_spikes,
                      *monitors.values())
        run_network(net, n_steps, dt, timing=timing)
        e_steps, e_index = spike_pairs(exc_spikes, float(dt))
        i_steps, i_index = spike_pairs(inh_spikes, float(dt))
        state = {}
        if "exc" in monitors:
            state = {key: recorded(monitors["exc"], key) for key in ("v", "theta", "ge", "gi")}
        if "w" in monitors:
            state["w"] = recorded(monitors["w"], "w")
        state.update(v_final=np.array(exc.v[:]), theta_final=np.array(exc.theta[:]),
                     w_final=np.array(plastic.w[:]))
        schedule = scheduling_summary(net)
    all_steps = np.concatenate([e_steps, i_steps])
    all_index = np.concatenate([e_index, i_index + n])
    order = np.lexsort((all_index, all_steps))
    return TwinResult(all_steps[order], all_index[order], state, schedule)


def run_wta_kernel(input_spikes: np.ndarray, conn: SparseConnectivity, n: int,
                   params: WTAParams = DEFAULT_PARAMS, stdp: STDPParams = DEFAULT_STDP, *,
                   v0_mv=None, theta0_mv=20.0, record_idx=None, record_syn=None) -> TwinResult:
    """The same run through :func:`bioplastic.simulate` and :func:`wta_advance`."""
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    record_syn = np.arange(0) if record_syn is None else np.asarray(record_syn)
    state0 = wta_init(n, conn, params, v0_mv=v0_mv, theta0_mv=theta0_mv)
    args = (wta_prepare(params, stdp), conn, post_index(conn.post, n))
    trace = simulate(wta_advance, input_spikes, state0, *args, record=("v", "theta", "ge", "gi"),
                     record_units=record_idx)
    state = {key: trace[key] for key in ("v", "theta", "ge", "gi")}
    if record_syn.size:
        state["w"] = simulate(wta_advance, input_spikes, state0, *args, record=("w",),
                              record_units=record_syn)["w"]
    final = trace.state
    state.update(v_final=final.v, theta_final=final.theta, w_final=final.w)
    steps, index = trace.spike_pairs()
    return TwinResult(steps, index, state)


# ----------------------------------------------------------------------------------------------
# cases


def random_case(seed: int, n: int = 100, n_in: int = 784, n_steps: int = 300,
                dt_ms: float = 0.5, max_delay_ms: float = 0.0, variant: str = "code") -> dict:
    """Pre-drawn workload: a random 28x28 "image" (a quarter of the pixels on), Poisson input at
    Diehl & Cook's rates (``pixel/8 * intensity``, intensity 4 so a short run spikes), uniform
    initial weights in [0, 0.3) (the code's random initialisation).

    ``variant`` picks the STDP/synapse options: ``"code"`` (D&C code: nearest triplet,
    conductance), ``"soft"`` (all-to-all pair rule with weight dependence, current synapses).
    """
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.0, 255.0, n_in) * (rng.random(n_in) < 0.25)
    spikes = poisson_spikes(image / 8.0 * 4.0, n_steps, dt_ms, rng)
    steps_max = int(round(max_delay_ms / dt_ms))
    w_scale = _CURRENT_SCALE if variant == "soft" else 1.0
    return {
        "input_spikes": spikes,
        "w0": rng.uniform(0.0, 0.3, (n, n_in)) * w_scale,
        "delay_steps": rng.integers(0, steps_max + 1, (n, n_in)),
        "v0_mv": rng.uniform(-70.0, -55.0, n),
        "dt_ms": np.float64(dt_ms),
        "variant": np.array(variant),
        "record_idx": np.arange(0, n, max(1, n // 10)),
        "record_syn": np.sort(rng.choice(n * n_in, size=min(64, n * n_in), replace=False)),
    }


#: Current synapses carry ge, gi in mV. Near rest (-65 mV) a conductance drives about
#: ge*(0 - (-65)) = 65*ge and gi*(-100 - (-65)) = -35*gi, so the "soft" variant scales the
#: excitatory weights by 60 and the inhibitory one by 40 to behave roughly like the default.
_CURRENT_SCALE = 60.0
_CURRENT_SCALE_INH = 40.0


def _options(variant: str, dt_ms: float) -> tuple[WTAParams, STDPParams]:
    if variant == "code":
        return WTAParams(dt_ms=dt_ms), STDPParams()
    if variant == "soft":
        # Current synapses, all-to-all pair STDP with soft bounds (mu = 0.5): every option
        # the "code" variant leaves off.
        s = _CURRENT_SCALE
        return (WTAParams(dt_ms=dt_ms, conductance=False, w_ei=10.4 * s,
                          w_ie=17.0 * _CURRENT_SCALE_INH),
                STDPParams(all_to_all=True, triplet=False, mu_dep=0.5, mu_pot=0.5,
                           eta_pre=1e-2, eta_post=5e-2, w_max=0.5 * s))
    raise ValueError(f"unknown variant {variant!r}")


def unpack(inputs: dict):
    """(input_spikes, conn, n, params, stdp, keyword arguments) of a ``random_case`` dict."""
    dt_ms = float(inputs["dt_ms"])
    conn = input_connectivity(inputs["w0"], delay_ms=inputs["delay_steps"] * dt_ms, dt_ms=dt_ms)
    params, stdp = _options(str(inputs["variant"]), dt_ms)
    kwargs = {"v0_mv": inputs["v0_mv"], "record_idx": inputs["record_idx"],
              "record_syn": _csr_ids(inputs, conn)}
    return inputs["input_spikes"], conn, inputs["w0"].shape[0], params, stdp, kwargs


def _csr_ids(inputs: dict, conn: SparseConnectivity) -> np.ndarray:
    """CSR synapse ids of the dense flat indices ``record_syn`` (post*n_in + pre)."""
    flat = conn.post * conn.n_pre + conn.pre()
    lookup = np.empty(flat.size, dtype=np.int64)
    lookup[flat] = np.arange(flat.size)
    return lookup[inputs["record_syn"]]


def _kernel_case(inputs: dict) -> TwinResult:
    spikes, conn, n, params, stdp, kwargs = unpack(inputs)
    return run_wta_kernel(spikes, conn, n, params, stdp, **kwargs)


def _twin_case(inputs: dict) -> TwinResult:
    spikes, conn, n, params, stdp, kwargs = unpack(inputs)
    return run_wta_twin(spikes, conn, n, params, stdp, **kwargs)


CASES = (
    TwinCase(
        name="wta_diehl_cook",
        model="wta",
        tier="T0",
        description="Diehl & Cook 2015 network, 100 excitatory + 100 inhibitory neurons, 784 "
                    "Poisson inputs with 0-5 ms delays, nearest-spike triplet STDP, adaptive "
                    "thresholds, conductance synapses, dt 0.5 ms, 400 steps",
        make=lambda seed: random_case(seed, n_steps=400, max_delay_ms=5.0),
        kernel=_kernel_case,
        twin=_twin_case,
        seed=20261123,
        n_units=lambda inputs: 2 * inputs["w0"].shape[0],
        n_steps=lambda inputs: inputs["input_spikes"].shape[0],
    ),
)
