"""Brian2 twin of :mod:`bioplastic.neurons.rsnn` (E/I network with learned delays).

Two ``NeuronGroup`` s (``exc``, ``inh``) with the LIF equations of
:mod:`bioplastic.reference.lif` (``I_ext`` a constant 0, which makes Brian2 print
``((I_ext + v*e) + v_rest) + ((-I_ext - v_rest)*e)``, the kernel's expression with zero drive,
bit for bit), a ``SpikeGeneratorGroup`` (``input``) holding every presentation's pre-drawn
spikes at absolute times, and one ``Synapses`` per pathway, named ``s0_input_exc``,
``s1_exc_exc``, ``s2_exc_inh``, ``s3_inh_exc`` so that Brian's name order inside the
``synapses`` slot is the kernel's pathway order. Plastic pathways carry event-driven pair STDP
(``on_pre``: ``v_post += w``, bump ``xpre``, depress; ``on_post``: potentiate, bump ``xpost``);
synapses are created with ``connect(i=, j=)`` from the kernel's topology (sorted by
``(i, j)``), delays are whole steps (``S.delay = D*dt``).

**Presentations.** Each stimulus is one ``net.run()``. Between runs the delays and weights are
updated *outside* Brian by :func:`bioplastic.neurons.rsnn_train.delay_weight_update` from the
twin's own recorded spikes (decision and reward by the same readout functions), then written
back with ``S.delay = ...`` and ``S.w = ...`` — the only way Brian2 allows (``delay`` is
constant during a run). There is no rest between presentations, so spikes are still in
Brian's spike queue when the delays change; they keep their old arrival steps.

Exactness: numpy target, loop-invariant optimisations off, float64, ``method='exact'``,
``refractory='t_ref'``, strict ``>``, monitors ``when='end'``; Brian step ``n`` is kernel step
``n``. Tier T0 (the event-driven ``exp`` of NumPy and libm may differ by one ulp on some CPUs).
"""

from __future__ import annotations

import numpy as np

from ..neurons.rsnn import (
    DEFAULT_RSNN_STDP,
    PATHWAYS,
    RSNNParams,
    lateral_inhibition,
    rsnn_init,
    rsnn_prepare,
    rsnn_topology,
    run_rsnn,
)
from ..neurons.rsnn_train import (
    RDL,
    LearningParams,
    class_groups,
    decide,
    delay_weight_update,
    learner_init,
    present,
    reward_for,
)
from ..rules.delay_learning import DelayBounds
from ..rules.stdp import STDPParams
from ._brian import exact_prefs, network, recorded, run_network, scheduling_summary, spike_pairs
from ._cases import TwinCase, TwinResult
from .lif import EQUATIONS as LIF_EQUATIONS
from .lif import RESET, THRESHOLD

__all__ = ["EQUATIONS", "THRESHOLD", "RESET", "STDP_MODEL", "ON_PRE_PLASTIC", "ON_POST",
           "ON_PRE_STATIC", "run_rsnn_twin", "run_rsnn_kernel", "random_case", "unpack",
           "PRESENTATION_LEARNING", "CASES"]

# The LIF twin's neuron, with a constant per-neuron drive instead of its TimedArray (the E/I
# groups get their input through synapses); threshold and reset are the LIF twin's own.
EQUATIONS = LIF_EQUATIONS.replace("I_ext(t, i)", "I_ext") + "I_ext : 1 (constant)\n"
STDP_MODEL = """w : 1
dxpre/dt = -xpre/tau_pre : 1 (event-driven)
dxpost/dt = -xpost/tau_post : 1 (event-driven)
"""
ON_PRE_STATIC = "v_post += w"


def _bump(trace: str, all_to_all: bool) -> str:
    return f"{trace} += 1.0" if all_to_all else f"{trace} = 1.0"


def ON_PRE_PLASTIC(stdp: STDPParams) -> str:  # noqa: N802 - a statement template, like the rest
    """``on_pre`` of a plastic synapse (the forms of :mod:`bioplastic.rules.stdp`)."""
    return "\n".join(["v_post += w", _bump("xpre", stdp.all_to_all),
                      "w = clip(w + (-(eta_pre*xpost)), w_min, w_max)"])


def ON_POST(stdp: STDPParams) -> str:  # noqa: N802
    return "\n".join(["w = clip(w + (eta_post*xpre), w_min, w_max)",
                      _bump("xpost", stdp.all_to_all)])


def _populations(b2, topo, params: RSNNParams, v0, dt):
    exc = b2.NeuronGroup(topo.n_exc, EQUATIONS, threshold=THRESHOLD, reset=RESET,
                         refractory="t_ref", method="exact", dt=dt, name="exc", order=0)
    groups = {"exc": exc}
    if topo.n_inh:
        groups["inh"] = b2.NeuronGroup(topo.n_inh, EQUATIONS, threshold=THRESHOLD, reset=RESET,
                                       refractory="t_ref", method="exact", dt=dt, name="inh",
                                       order=0)
    p = params
    values = {"exc": (p.tau_exc_ms, p.v_rest_exc_mv, p.v_reset_exc_mv, p.v_th_exc_mv,
                      p.t_ref_exc_ms, p.theta_plus_mv, slice(0, topo.n_exc)),
              "inh": (p.tau_inh_ms, p.v_rest_inh_mv, p.v_reset_inh_mv, p.v_th_inh_mv,
                      p.t_ref_inh_ms, 0.0, slice(topo.n_exc, topo.n_neurons))}
    for name, g in groups.items():
        tau, v_rest, v_reset, v_th, t_ref, theta_plus, sl = values[name]
        g.I_ext = 0.0
        g.v_rest, g.v_reset, g.v_th = float(v_rest), float(v_reset), float(v_th)
        g.theta_plus = float(theta_plus)
        g.tau_m = float(tau) * b2.ms
        g.tau_theta = float(p.tau_theta_ms) * b2.ms
        g.t_ref = float(t_ref) * b2.ms
        g.v = v0[sl]
    return groups


def _stdp_namespace(b2, stdp: STDPParams) -> dict:
    return {"tau_pre": stdp.tau_pre_ms * b2.ms, "tau_post": stdp.tau_post_ms * b2.ms,
            "eta_pre": float(stdp.eta_pre), "eta_post": float(stdp.eta_post),
            "w_min": float(stdp.w_min), "w_max": float(stdp.w_max)}


def _synapses(b2, topo, groups, source, kp, stdp, w, delay_steps, dt):
    """One Synapses per non-empty pathway, in topology order; returns {pathway: object}."""
    out = {}
    for q, name in enumerate(PATHWAYS):
        lo, hi = topo.pathway_ptr[q], topo.pathway_ptr[q + 1]
        if hi == lo:
            continue
        src_name, tgt_name = name.split("_")
        src = source if src_name == "input" else groups[src_name]
        if kp.stdp_on[q]:
            syn = b2.Synapses(src, groups[tgt_name], STDP_MODEL, on_pre=ON_PRE_PLASTIC(stdp),
                              on_post=ON_POST(stdp), dt=dt, name=f"s{q}_{name}", order=0,
                              namespace=_stdp_namespace(b2, stdp))
        else:
            syn = b2.Synapses(src, groups[tgt_name], "w : 1", on_pre=ON_PRE_STATIC, dt=dt,
                              name=f"s{q}_{name}", order=0)
        i, j = topo.local(q)
        syn.connect(i=i, j=j)
        syn.w = w[lo:hi]
        syn.delay = delay_steps[lo:hi] * dt
        out[q] = syn
    return out


def _neuron_spikes(monitors, topo, dt_s, lo, hi):
    """Spikes of steps [lo, hi) as a bool (hi - lo, n) raster (exc then inh)."""
    raster = np.zeros((hi - lo, topo.n_neurons), dtype=np.bool_)
    for name, offset in (("exc", 0), ("inh", topo.n_exc)):
        if name not in monitors:
            continue
        steps, index = spike_pairs(monitors[name], dt_s)
        keep = (steps >= lo) & (steps < hi)
        raster[steps[keep] - lo, index[keep] + offset] = True
    return raster


def run_rsnn_twin(stimuli, topo, params: RSNNParams, stdp: STDPParams, w0, delay0_ms, *,
                  v0_mv, labels=None, groups=None, n_classes: int = 0,
                  learning: LearningParams | None = None, record_traces: bool = False,
                  target: str = "numpy", timing: dict | None = None) -> TwinResult:
    """Present ``stimuli`` (a list of bool (T_k, n_in) rasters), one ``run()`` each.

    With ``learning`` (and ``labels``, ``groups``, ``n_classes``), delays and weights are
    updated between runs as described in the module docstring. Returns spikes (all
    presentations, absolute steps), ``w_after``/``delay_after`` (P, n_syn) after every
    presentation, decisions, final ``v``/``theta``/traces and, with ``record_traces``, ``v`` and
    ``theta`` of every neuron after every step.
    """
    kp = rsnn_prepare(params, topo.n_exc, topo.n_inh, stdp)
    w = np.array(w0, dtype=np.float64)
    d = np.array(delay0_ms, dtype=np.float64)
    d_steps = np.floor(d / params.dt_ms + 0.5).astype(np.int64)
    v0 = np.broadcast_to(np.asarray(v0_mv, dtype=np.float64), (topo.n_neurons,))
    learner = learner_init(topo, learning) if learning is not None else None
    with exact_prefs(target) as b2:
        dt = params.dt_ms * b2.ms
        lengths = [s.shape[0] for s in stimuli]
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        steps, index = np.nonzero(np.concatenate(stimuli, axis=0))
        source = b2.SpikeGeneratorGroup(topo.n_in, index, steps * dt, dt=dt, name="input")
        pops = _populations(b2, topo, params, v0, dt)
        syns = _synapses(b2, topo, pops, source, kp, stdp, w, d_steps, dt)
        monitors = {name: b2.SpikeMonitor(g, name=f"{name}_spikes") for name, g in pops.items()}
        states = {}
        if record_traces:
            states = {name: b2.StateMonitor(g, ["v", "theta"], record=True, when="end",
                                            name=f"{name}_states") for name, g in pops.items()}
        net = network(source, *pops.values(), *syns.values(), *monitors.values(),
                      *states.values())
        w_after, d_after, decisions = [], [], []
        for k, stim in enumerate(stimuli):
            run_network(net, stim.shape[0], dt, timing=timing if k == 0 else None)
            for q, syn in syns.items():
                w[topo.pathway_ptr[q]:topo.pathway_ptr[q + 1]] = np.asarray(syn.w[:])
            if learning is not None:
                post = _neuron_spikes(monitors, topo, float(dt), starts[k], starts[k + 1])
                decision = decide(post[:, :topo.n_exc], groups, n_classes)
                reward = reward_for(decision, int(labels[k]))
                src = np.concatenate([stim, post], axis=1)
                d, w, learner = delay_weight_update(topo, d, w, src, post, reward, learner,
                                                    float(params.dt_ms), learning)
                d_steps = np.floor(d / params.dt_ms + 0.5).astype(np.int64)
                for q, syn in syns.items():
                    lo, hi = topo.pathway_ptr[q], topo.pathway_ptr[q + 1]
                    syn.w = w[lo:hi]
                    syn.delay = d_steps[lo:hi] * dt
                decisions.append(decision)
            w_after.append(w.copy())
            d_after.append(d.copy())
        spikes = {name: spike_pairs(m, float(dt)) for name, m in monitors.items()}
        state = {"w_after": np.array(w_after), "delay_after": np.array(d_after),
                 "v_final": np.concatenate([np.asarray(g.v[:]) for g in pops.values()]),
                 "theta_final": np.concatenate([np.asarray(g.theta[:]) for g in pops.values()])}
        x_pre = np.zeros(topo.n_synapses)
        x_post = np.zeros(topo.n_synapses)
        for q, syn in syns.items():
            if kp.stdp_on[q]:
                sl = slice(topo.pathway_ptr[q], topo.pathway_ptr[q + 1])
                x_pre[sl], x_post[sl] = np.asarray(syn.xpre[:]), np.asarray(syn.xpost[:])
        state.update(x_pre_final=x_pre, x_post_final=x_post)
        if learning is not None:
            state["decision"] = np.array(decisions, dtype=np.float64)
        if record_traces:
            for key in ("v", "theta"):
                state[key] = np.concatenate([recorded(states[name], key) for name in pops],
                                            axis=1)
        schedule = scheduling_summary(net)
    all_steps = np.concatenate([spikes["exc"][0]] + ([spikes["inh"][0]] if "inh" in spikes
                                                      else []))
    all_index = np.concatenate([spikes["exc"][1]] + ([spikes["inh"][1] + topo.n_exc]
                                                      if "inh" in spikes else []))
    order = np.lexsort((all_index, all_steps))
    return TwinResult(all_steps[order], all_index[order], state, schedule)


def run_rsnn_kernel(stimuli, topo, params: RSNNParams, stdp: STDPParams, w0, delay0_ms, *,
                    v0_mv, labels=None, groups=None, n_classes: int = 0,
                    learning: LearningParams | None = None,
                    record_traces: bool = False) -> TwinResult:
    """The same presentations through the kernel (:func:`run_rsnn`, :func:`present`)."""
    state = rsnn_init(topo, params, w0, delay0_ms, v0_mv=v0_mv)
    learner = learner_init(topo, learning) if learning is not None else None
    spikes, w_after, d_after, decisions, traces = [], [], [], [], {"v": [], "theta": []}
    for k, stim in enumerate(stimuli):
        if learning is None:
            trace = run_rsnn(stim, state, topo, params, stdp,
                             record=("v", "theta") if record_traces else ())
            state, sp = trace.state, trace.spikes
            for key in traces if record_traces else ():
                traces[key].append(trace[key])
        else:
            state, learner, decision, _, sp = present(stim, int(labels[k]), state, topo,
                                                      learner, groups, n_classes, params, stdp,
                                                      learning)
            decisions.append(decision)
        spikes.append(sp)
        w_after.append(state.w.copy())
        d_after.append(state.delay_ms.copy())
    steps, index = np.nonzero(np.concatenate(spikes, axis=0))
    result = {"w_after": np.array(w_after), "delay_after": np.array(d_after),
              "v_final": state.v, "theta_final": state.theta,
              "x_pre_final": state.x_pre, "x_post_final": state.x_post}
    if learning is not None:
        result["decision"] = np.array(decisions, dtype=np.float64)
    if record_traces:
        result.update({key: np.concatenate(val, axis=0) for key, val in traces.items()})
    return TwinResult(steps.astype(np.int64), index.astype(np.int64), result)


# ----------------------------------------------------------------------------------------------
# cases


def random_case(seed: int, *, n_in: int = 40, n_maps: int = 4, n_pos: int = 8,
                n_presentations: int = 1, steps_per: int = 200, max_delay_steps: int = 15,
                rate: float = 0.08, theta_plus_mv: float = 0.5, min_gap: int = 0,
                t_ref_exc_ms: float = 2.0, stdp_taus_ms: tuple[float, float] | None = None
                ) -> dict:
    """A pre-drawn workload: Bernoulli input rasters, random sparse input and recurrent
    synapses with heterogeneous whole-step delays, lateral inhibition between ``n_maps`` maps
    of ``n_pos`` positions, heterogeneous initial potentials, random labels.

    ``min_gap`` > 0 drops input spikes closer than ``min_gap`` steps to the previous kept spike
    of the same source. With ``min_gap`` and the excitatory refractory period both above the
    largest delay, one synapse can never have two events due in the same step after a delay
    change (``s1 + D_old = s2 + D_new`` needs ``s2 - s1 <= max D``). Such a repeated synapse
    is processed sequentially by the kernel and by Brian2's compiled targets, but *in one
    vectorised pass* by Brian2's numpy target (both events see the state before the step), so
    numpy-target twins must avoid it.

    ``stdp_taus_ms``: ``(tau_pre, tau_post)`` of the STDP traces (default: both 10 ms, the
    network's default, under which the kernel computes one decay factor for both).
    """
    rng = np.random.default_rng(seed)
    n_exc = n_maps * n_pos
    n_ie = rng.binomial(n_in * n_exc, 0.3)
    n_ee = rng.binomial(n_exc * n_exc, 0.1)
    stimuli = rng.random((n_presentations, steps_per, n_in)) < rate
    if min_gap:
        stimuli = _thinned(stimuli.reshape(-1, n_in), min_gap).reshape(stimuli.shape)
    case = {
        "stimuli": stimuli,
        "t_ref_exc_ms": np.float64(t_ref_exc_ms),
        "labels": rng.integers(0, n_maps, n_presentations),
        "ie_pre": rng.integers(0, n_in, n_ie), "ie_post": rng.integers(0, n_exc, n_ie),
        "ie_w": rng.uniform(0.5, 4.0, n_ie),
        "ie_d": rng.integers(0, max_delay_steps + 1, n_ie).astype(np.float64),
        "ee_pre": rng.integers(0, n_exc, n_ee), "ee_post": rng.integers(0, n_exc, n_ee),
        "ee_w": rng.uniform(0.0, 2.0, n_ee),
        "ee_d": rng.integers(1, max_delay_steps + 1, n_ee).astype(np.float64),
        "v0_mv": rng.uniform(-65.0, -56.0, 2 * n_exc),
        "shape": np.array([n_in, n_maps, n_pos, max_delay_steps]),
        "theta_plus_mv": np.float64(theta_plus_mv),
    }
    if stdp_taus_ms is not None:   # only then: the older cases' inputs (and hashes) stay
        case["stdp_taus_ms"] = np.asarray(stdp_taus_ms, dtype=np.float64)
    return case


def _thinned(raster: np.ndarray, min_gap: int) -> np.ndarray:
    """Keep a spike only if the source's previous kept spike is >= ``min_gap`` steps back."""
    out = np.zeros_like(raster)
    last = np.full(raster.shape[1], -min_gap)
    for t in range(raster.shape[0]):
        keep = raster[t] & (t - last >= min_gap)
        out[t] = keep
        last[keep] = t
    return out


def unpack(inputs: dict):
    n_in, n_maps, n_pos, max_delay = (int(v) for v in inputs["shape"])
    n_exc = n_maps * n_pos
    synapses = {"input_exc": (inputs["ie_pre"], inputs["ie_post"], inputs["ie_w"],
                              inputs["ie_d"]),
                "exc_exc": (inputs["ee_pre"], inputs["ee_post"], inputs["ee_w"],
                            inputs["ee_d"])}
    synapses.update(lateral_inhibition(n_maps, n_pos, 6.0, -4.0))
    topo, w, d = rsnn_topology(n_in, n_exc, n_exc, synapses)
    params = RSNNParams(dt_ms=1.0, max_delay_ms=float(max_delay) + 5.0,
                        theta_plus_mv=float(inputs["theta_plus_mv"]),
                        t_ref_exc_ms=float(inputs["t_ref_exc_ms"]))
    stdp = DEFAULT_RSNN_STDP._replace(eta_pre=0.05, eta_post=0.05, w_max=5.0)
    if "stdp_taus_ms" in inputs:
        tau_pre, tau_post = (float(t) for t in inputs["stdp_taus_ms"])
        stdp = stdp._replace(tau_pre_ms=tau_pre, tau_post_ms=tau_post)
    stimuli = list(inputs["stimuli"])
    return topo, params, stdp, w, d, stimuli


#: Learning of the presentation case: delays bounded by 10 ms = 10 steps, below the 11-step
#: input gap and excitatory refractory period (see random_case); no stop criterion, so every
#: neuron keeps learning; growth 1e-4 x the 40 ms stimulus, as the reference code.
PRESENTATION_LEARNING = RDL._replace(bounds=DelayBounds(
    d_min_ms=0.0, d_max_ms=10.0, w_min=0.0, w_max=5.0, stop_ms=-1.0, growth_ms=0.004))


def _run(inputs: dict, runner, learn: bool) -> TwinResult:
    topo, params, stdp, w, d, stimuli = unpack(inputs)
    n_maps = int(inputs["shape"][1])
    kwargs = {"v0_mv": inputs["v0_mv"]}
    if learn:
        kwargs.update(labels=inputs["labels"], n_classes=n_maps,
                      learning=PRESENTATION_LEARNING,
                      groups=class_groups(n_maps, int(inputs["shape"][2])))
    else:
        kwargs["record_traces"] = True
    return runner(stimuli, topo, params, stdp, w, d, **kwargs)


def _n_units(inputs: dict) -> int:
    return 2 * int(inputs["shape"][1]) * int(inputs["shape"][2])


def _n_steps(inputs: dict) -> int:
    return int(np.prod(inputs["stimuli"].shape[:2]))


CASES = (
    TwinCase(
        name="rsnn_fixed_delays",
        model="rsnn",
        tier="T0",
        description="E/I network (32 exc in 4 maps x 8 positions, 32 inh, lateral inhibition), "
                    "40 Bernoulli inputs, 0-15 step heterogeneous delays, pair STDP, threshold "
                    "homeostasis, one 200-step stimulus",
        make=lambda seed: random_case(seed),
        kernel=lambda inputs: _run(inputs, run_rsnn_kernel, False),
        twin=lambda inputs: _run(inputs, run_rsnn_twin, False),
        seed=20261201,
        n_units=_n_units,
        n_steps=_n_steps,
    ),
    TwinCase(
        name="rsnn_unequal_taus",
        model="rsnn",
        tier="T0",
        description="the fixed-delay case with STDP time constants tau_pre = 20 ms and "
                    "tau_post = 7 ms (two decay factors per event; the default equal "
                    "constants share one)",
        make=lambda seed: random_case(seed, stdp_taus_ms=(20.0, 7.0)),
        kernel=lambda inputs: _run(inputs, run_rsnn_kernel, False),
        twin=lambda inputs: _run(inputs, run_rsnn_twin, False),
        seed=20261203,
        n_units=_n_units,
        n_steps=_n_steps,
    ),
    TwinCase(
        name="rsnn_rdl_presentations",
        model="rsnn",
        tier="T0",
        description="the same network, 24 presentations of 40 steps without rest; RDL delays, "
                    "weight rule F, rate homeostasis and growth applied between run() calls "
                    "while spikes are still queued; delays and weights after every presentation",
        make=lambda seed: random_case(seed, n_presentations=24, steps_per=40,
                                      max_delay_steps=10, min_gap=11, t_ref_exc_ms=11.0,
                                      rate=0.15),
        kernel=lambda inputs: _run(inputs, run_rsnn_kernel, True),
        twin=lambda inputs: _run(inputs, run_rsnn_twin, True),
        seed=20261202,
        n_units=_n_units,
        n_steps=_n_steps,
    ),
)
