"""``bioplastic bench --peers``: the same workloads side by side with other simulators (issue 13).

Workloads (full sizes; ``--quick`` shrinks them to seconds):

* **Recurrent LIF network** — about 100 synapses per neuron, zero delays, 1,000 steps of
  0.1 ms, 1k and 10k neurons, heterogeneous (per-neuron arrays) and homogeneous (scalar)
  parameters. bioplastic: :func:`bioplastic.simulate` over ``lif_advance`` (compiled by a
  warm-up call). Peers: Brian2 ``numpy``, ``cython`` (runtime targets; set-up and the first
  step, where code is generated and compiled, are excluded) and ``cpp_standalone`` (its main
  loop as timed by the standalone binary; the build is reported separately and excluded from
  the ratio). The binary times its loop with ``std::clock()``, the CPU time of its process, so
  that ratio uses bioplastic's CPU time too (``ratio``; ``ratio_wall`` is our wall time over
  the binary's CPU time, which is unfair to us whenever the machine is loaded). Brian2 runs
  with the twin's exactness preferences (float64, loop-invariant
  optimisations off, strict compiler flags), so spikes must be identical; the ``identical``
  column checks it.
  The same network runs again with heterogeneous synaptic delays (``DELAYS``: each synapse
  draws a whole number of steps from 1 to 20), against the same targets.
* **Diehl & Cook** — 784 inputs -> 100 excitatory + 100 inhibitory neurons with STDP, three
  presentations of 350 ms at dt 0.5 ms (the same pre-drawn input spikes and initial weights
  for both), against BindsNET's ``DiehlAndCook2015`` (one torch thread). The two networks
  differ in their synapses, learning rule and spike rules (``SEMANTICS``), so the work per
  step is alike but the spike trains are not compared.
* **Torch LIF layer** — T=100, B=32, 1,024 neurons, float32, CPU: forward + backward (sum of
  spikes as the loss) and forward only under ``torch.no_grad``. bioplastic:
  :meth:`bioplastic.nn.LIF.from_beta`. Peers: snnTorch ``Leaky``, SpikingJelly ``LIFNode``
  (multi-step mode), Norse ``LIFBoxCell``, BindsNET ``LIFNodes`` (forward only; BindsNET has
  no surrogate gradient).

Every timing is the **median** of ``repeats`` rounds, and the contenders of one workload are
**interleaved** round by round so that load from other processes hits them alike. The ratio is
``bioplastic time / peer time``: below 1 means bioplastic is faster.

A peer that is not installed (or fails to import) gives one row saying so, never an error.

Semantic differences (see ``docs/benchmarks.md``; the workloads are the same size and work, not
the same numbers, across torch libraries):

* bioplastic, Brian2, snnTorch and Norse fire on ``v > threshold``; SpikingJelly on
  ``v >= threshold``.
* Reset: bioplastic, Brian2, SpikingJelly (hard reset) and Norse reset to ``v_reset`` in the
  step of the spike; snnTorch ``reset_mechanism="zero"`` applies the reset one step later.
* Input scaling: bioplastic ``v <- beta v + (1 - beta) x``; snnTorch ``v <- beta v + x``;
  SpikingJelly ``v <- v + (x - v)/tau``; Norse ``v <- v + dt/tau (-v + x)``. Inputs are
  scaled per library so that every layer sees the same membrane drive.
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable

import numpy as np

from . import Benchmark

__all__ = ["BENCHMARKS", "PEER_BENCHMARKS", "run_peers", "ratio_table", "scaling_table",
           "interleaved_medians", "import_peer", "SEMANTICS", "bytes_per_neuron_step"]

#: The semantic differences printed under the table.
SEMANTICS = {
    "brian2": "same model and schedule as the kernel (the twin): strict '>', reset to v_reset, "
              "refractory, adaptive threshold; identical spikes expected",
    "snntorch": "Leaky: '>' threshold, reset_mechanism='zero' applied one step after the "
                "spike, v <- beta v + I (input scaled by 1 - beta to match)",
    "spikingjelly": "LIFNode multi-step (its default CPU path): '>=' threshold, hard reset to 0, "
                    "v <- v + (x - v)/tau (decay_input=True, same drive as bioplastic)",
    "norse": "LIFBoxCell: '>' threshold, reset to v_reset, v <- v + dt/tau (v_leak - v + i)",
    "bindsnet": "LIFNodes: '>=' threshold, reset to rest with refractory, input added to v "
                "(no decay of the input), forward only (no surrogate gradient)",
    "bindsnet_diehl_cook": "DiehlAndCook2015 (its defaults) vs bioplastic's Diehl & Cook network "
                           "(the original code's): current synapses (an input spike adds w to v; "
                           "exc->inh +22.5, inh->exc -17.5 mV) vs conductances with reversal "
                           "potentials; pair PostPre STDP (nu 1e-4/1e-2, w clipped to [0, 1]) vs "
                           "nearest-spike triplet STDP; '>=' threshold and at most one excitatory "
                           "spike per step (one_spike, drawn at random) vs strict '>' and no "
                           "limit; float32 vs float64; state reset after each presentation vs "
                           "carried on; both normalise input weights to 78.4 once per "
                           "presentation; same input spikes and initial weights, so the work "
                           "per step is alike, the spike trains are not",
}


def import_peer(name: str):
    """The module ``name``, or the reason it cannot be used (a string), never an exception."""
    try:
        return importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - any import failure means "peer not usable"
        return f"{name} not usable here ({type(err).__name__}: {err})"


class _Placeholder(types.ModuleType):
    """A module whose every attribute is an empty class (the torchvision stub's parts)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def import_bindsnet(module: str = "bindsnet.network.nodes"):
    """The BindsNET module ``module``, or the reason it cannot be used.

    BindsNET's package ``__init__`` imports its dataset and plotting helpers, which import
    torchvision; the torchvision wheel that installs under the torch pin may not load with it
    (``operator torchvision::nms does not exist``), and BindsNET is installed without its
    dependencies. The network, its layers and its learning rules never use torchvision, so a
    placeholder ``torchvision`` is put in ``sys.modules`` for the import only, then removed.
    """
    tv = import_peer("torchvision")
    if not isinstance(tv, str):
        return import_peer(module)
    names = ("torchvision", "torchvision.utils", "torchvision.datasets", "torchvision.transforms")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    root = _Placeholder("torchvision")
    root.__path__ = []
    sys.modules["torchvision"] = root
    for name in names[1:]:
        sys.modules[name] = _Placeholder(name)
        setattr(root, name.split(".")[1], sys.modules[name])
    try:
        return import_peer(module)
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def import_bindsnet_nodes():
    """``bindsnet.network.nodes``, or the reason it cannot be used (see
    :func:`import_bindsnet`)."""
    return import_bindsnet("bindsnet.network.nodes")


def interleaved_medians(candidates: dict[str, Callable[[], float | None]],
                        repeats: int, *, on_round: Callable[[], object] | None = None
                        ) -> dict[str, float]:
    """Median seconds of each candidate over ``repeats`` interleaved rounds.

    A candidate returns the seconds to count (its own timing, e.g. Brian2's main loop), or
    ``None`` to have its wall time counted. Each candidate runs once first as a warm-up.
    ``on_round`` is called after every round (e.g. to sample the load average).
    """
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeats + 1):
        for name, fn in candidates.items():
            start = time.perf_counter()
            own = fn()
            wall = time.perf_counter() - start
            if round_:
                times[name].append(wall if own is None else float(own))
        if on_round is not None:
            on_round()
    return {name: statistics.median(ts) for name, ts in times.items()}


# --------------------------------------------------------------------------- network
def network_case(n: int, n_steps: int, *, heterogeneous: bool, seed: int = 13,
                 syn_per_neuron: float = 100.0, delays: tuple[int, int] | None = None):
    """(params, drive, conn, v0) of the recurrent workload (about ``syn_per_neuron`` synapses
    onto each neuron). Homogeneous: every parameter a scalar (the mean values). ``delays``:
    ``(lo, hi)`` draws each synapse's delay uniformly from ``lo..hi`` whole steps (inclusive);
    ``None``: zero delays."""
    from ..reference.lif import random_network, unpack

    inputs = random_network(seed, n=n, n_steps=n_steps, p=min(1.0, syn_per_neuron / n),
                            max_delay_steps=0)
    inputs["weight"] = inputs["weight"] * 0.5   # ~100 inputs: keep rates moderate
    if delays is not None:
        lo, hi = delays
        rng = np.random.default_rng(seed + 1)   # its own stream: the rest stays as without
        inputs["delay_steps"] = rng.integers(lo, hi + 1, inputs["weight"].size)
    if not heterogeneous:
        inputs.update(tau_m_ms=10.0, v_rest_mv=-65.0, v_reset_mv=-67.5, v_th_mv=-50.0,
                      t_ref_ms=1.0, tau_theta_ms=50.0, theta_plus_mv=0.5)
    params, drive, conn = unpack(inputs)
    return params, drive, conn, inputs["v0_mv"]


def _brian_build(b2, params, drive, conn, v0, dt):
    """The twin's network (its equations, threshold, reset, schedule) without state monitors;
    homogeneous parameters become namespace constants, as a Brian2 user would write them."""
    from ..neurons.lif import lif_init
    from ..reference.lif import EQUATIONS, ON_PRE, RESET, THRESHOLD

    n = drive.shape[1]
    names = {"v_rest": params.v_rest_mv, "v_reset": params.v_reset_mv, "v_th": params.v_th_mv,
             "theta_plus": params.theta_plus_mv, "tau_m": params.tau_m_ms,
             "tau_theta": params.tau_theta_ms, "t_ref": params.t_ref_ms}
    timed = {"tau_m", "tau_theta", "t_ref"}
    scalar = {k: v for k, v in names.items() if np.ndim(v) == 0}
    eqs = "\n".join(line for line in EQUATIONS.strip().splitlines()
                    if line.split(":")[0].strip() not in scalar)
    namespace = {"I_ext": b2.TimedArray(drive, dt=dt)}
    namespace.update({k: float(v) * b2.ms if k in timed else float(v)
                      for k, v in scalar.items()})
    group = b2.NeuronGroup(n, eqs, threshold=THRESHOLD, reset=RESET, refractory="t_ref",
                           method="exact", dt=dt, name="lif", order=0)
    for key, value in names.items():
        if key not in scalar:
            setattr(group, key, np.asarray(value, float) * (b2.ms if key in timed else 1))
    group.v = lif_init(n, params, v0_mv=v0).v
    syn = b2.Synapses(group, group, "w : 1 (constant)", on_pre=ON_PRE, dt=dt, name="recurrent",
                      order=0)
    syn.connect(i=conn.pre(), j=conn.post)
    syn.w = conn.weight
    syn.delay = conn.delay_steps * dt
    spikes = b2.SpikeMonitor(group, name="spike_monitor")
    return b2.Network(group, syn, spikes), spikes, namespace


def _brian_runtime(target: str, params, drive, conn, v0):
    """A callable running the network on a Brian2 runtime target; returns the seconds of all
    steps but the first (code generation and compilation happen in the first) scaled to all."""
    from ..reference._brian import exact_prefs, run_network, spike_pairs

    n_steps = drive.shape[0]
    result = {}

    def run() -> float:
        with exact_prefs(target) as b2:
            dt = params.dt_ms * b2.ms
            net, mon, namespace = _brian_build(b2, params, drive, conn, v0, dt)
            timing: dict = {}
            run_network(net, n_steps, dt, namespace=namespace, timing=timing)
            result["spikes"] = spike_pairs(mon, float(dt))
        return timing["seconds"] * n_steps / (n_steps - 1)

    return run, result


def _brian_standalone(params, drive, conn, v0) -> tuple[Callable[[], float], dict]:
    """Build the cpp_standalone project once (``result["build_s"]``) and return a callable that
    reruns the binary and reports the main-loop time the binary measured itself."""
    from ..reference._brian import exact_prefs, spike_pairs

    result: dict = {}
    directory = tempfile.mkdtemp(prefix="bioplastic-bench-standalone-")
    with exact_prefs("cython") as b2:   # cython: sets the strict C++ flags standalone also uses
        b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
        try:
            dt = params.dt_ms * b2.ms
            net, mon, namespace = _brian_build(b2, params, drive, conn, v0, dt)
            net.run(drive.shape[0] * dt, namespace=namespace)
            start = time.perf_counter()
            # b2.device is a proxy of whichever device is current: keep the device itself.
            device = b2.get_device()
            device.build(directory=directory, compile=True, run=False, with_output=False)
            result["build_s"] = time.perf_counter() - start
        finally:
            # set_device is global: the runtime targets timed next must not build on it; the
            # built project is rerun through the device object itself.
            b2.set_device("runtime")

    def run() -> float:
        device.run(directory=directory, with_output=False)
        result["spikes"] = spike_pairs(mon, float(dt))
        return float(device._last_run_time)

    def close() -> None:
        device.reinit()

    result["close"] = close
    return run, result


#: Heterogeneous integer-step delays of the delayed network rows (whole steps, inclusive).
DELAYS = (1, 20)
#: The targets the network rows time, in this order.
BRIAN2_TARGETS = ("numpy", "cython", "cpp_standalone")


def network_rows(quick: bool, repeats: int, *, sizes: tuple[int, ...] | None = None,
                 targets: tuple[str, ...] = BRIAN2_TARGETS,
                 delays: tuple[tuple[int, int] | None, ...] = (None, DELAYS)) -> list[dict]:
    """The recurrent LIF network against Brian2: every size x parameters (heterogeneous,
    homogeneous) x delays (zero; ``DELAYS``) against every target, interleaved per workload."""
    brian2 = import_peer("brian2")
    if sizes is None:
        sizes = (500,) if quick else (1000, 10_000)
    n_steps = 100 if quick else 1000
    if isinstance(brian2, str):
        return [{"name": "lif_network_vs_brian2", "skipped": brian2}]
    rows: list[dict] = []
    for n in sizes:
        for delay in delays:
            for heterogeneous in (True, False):
                rows.extend(_network_workload_rows(n, n_steps, heterogeneous, delay, targets,
                                                   repeats))
    return rows


def _network_workload(n, n_steps, heterogeneous, delay) -> str:
    return ("recurrent LIF " + ("heterogeneous" if heterogeneous else "homogeneous")
            + ("" if delay is None else f", delays {delay[0]}-{delay[1]} steps"))


def _network_workload_rows(n, n_steps, heterogeneous, delay, targets, repeats) -> list[dict]:
    """One workload: bioplastic and each Brian2 target interleaved; a row per target."""
    from ..neurons.lif import lif_advance, lif_init, lif_prepare
    from ..simulate import simulate

    params, drive, conn, v0 = network_case(n, n_steps, heterogeneous=heterogeneous,
                                           delays=delay)
    state = lif_init(n, params, conn, v0_mv=v0)
    kparams = lif_prepare(params, n)
    ours: dict = {"cpu": []}

    def kernel():
        start = time.process_time()
        ours["trace"] = simulate(lif_advance, drive, state, kparams, conn)
        ours["cpu"].append(time.process_time() - start)

    workload = _network_workload(n, n_steps, heterogeneous, delay)
    suffix = "" if delay is None else "_delays"
    candidates: dict = {"bioplastic": kernel}
    results: dict = {}
    rows: list[dict] = []
    for target in targets:
        try:
            if target == "cpp_standalone":
                fn, res = _brian_standalone(params, drive, conn, v0)
            else:
                fn, res = _brian_runtime(target, params, drive, conn, v0)
        except Exception as err:  # noqa: BLE001 - a peer that fails is a row, not a crash
            rows.append({"name": f"lif_network{suffix}_vs_brian2_{target}", "neurons": n,
                         "skipped": f"{type(err).__name__}: {err}"})
            continue
        candidates[target], results[target] = fn, res
    loads = [_load()]
    try:
        med = interleaved_medians(candidates, repeats, on_round=lambda: loads.append(_load()))
    finally:
        for res in results.values():
            if "close" in res:
                res["close"]()
    steps, index = ours["trace"].spike_pairs()
    ours_cpu = statistics.median(ours["cpu"][1:])   # the first call is the warm-up round
    for target, res in results.items():
        b_steps, b_index = res["spikes"]
        rows.append({
            "name": f"lif_network{suffix}_vs_brian2_{target}", "workload": workload,
            "neurons": n, "synapses": conn.n_synapses, "steps": n_steps,
            "max_delay_steps": conn.max_delay, "spikes": int(steps.size),
            "identical": bool(np.array_equal(steps, b_steps)
                              and np.array_equal(index, b_index)),
            "bioplastic_s": med["bioplastic"], "peer_s": med[target],
            "peer_build_s": res.get("build_s"),
            **_ratio_fields(target, med["bioplastic"], ours_cpu, med[target]),
            "neuron_steps_per_s": n * n_steps / med["bioplastic"],
            "syn_events_per_s": int(steps.size) * conn.n_synapses / n / med["bioplastic"],
            "load_average": max(loads),
        })
    return rows


def _ratio_fields(target: str, ours_wall: float, ours_cpu: float, peer: float) -> dict:
    """The ratio against ``target`` on the clock the peer's time was taken with.

    Brian2's ``cpp_standalone`` binary times its main loop with ``std::clock()`` (CPU time of
    its process, when built without OpenMP), so that row compares our CPU time with it; on a
    loaded machine wall time also counts the time the process waits for a core, which the
    binary's figure never does. The runtime targets are timed by wall clock on both sides."""
    if target != "cpp_standalone":
        return {"ratio": ours_wall / peer}
    return {"ratio": ours_cpu / peer, "bioplastic_cpu_s": ours_cpu,
            "ratio_wall": ours_wall / peer, "clock": "process CPU time (both sides)"}


def _load() -> float:
    """The 1-minute load average (0.0 where the platform has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


# --------------------------------------------------------------------------- torch
def _torch_candidates(torch, x, beta: float, train: bool) -> tuple[dict, list[dict]]:
    """Per library, a callable running the layer on ``x (T, B, N)``; rows for missing peers."""
    from ..nn import LIF

    skipped: list[dict] = []
    candidates: dict = {}
    kind = "fwd+bwd" if train else "fwd"

    def timed(forward):
        def run():
            if train:
                xi = x.detach().requires_grad_(True)
                forward(xi).sum().backward()
            else:
                with torch.no_grad():
                    forward(x)
        return run

    ours = LIF.from_beta(beta)
    candidates["bioplastic"] = timed(lambda xi: ours(xi)[0])

    snn = import_peer("snntorch")
    if isinstance(snn, str):
        skipped.append({"name": f"lif_layer_{kind}_vs_snntorch", "skipped": snn})
    else:
        leaky = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero")

        def snntorch_forward(xi):
            mem = leaky.init_leaky()
            out = []
            for x_t in xi * (1.0 - beta):
                spk, mem = leaky(x_t, mem)
                out.append(spk)
            return torch.stack(out)
        candidates["snntorch"] = timed(snntorch_forward)

    sj = import_peer("spikingjelly.activation_based.neuron")
    if isinstance(sj, str):
        skipped.append({"name": f"lif_layer_{kind}_vs_spikingjelly", "skipped": sj})
    else:
        from spikingjelly.activation_based import functional as sj_functional

        tau = 1.0 / (1.0 - beta)
        node = sj.LIFNode(tau=tau, v_threshold=1.0, v_reset=0.0, step_mode="m",
                          detach_reset=False)

        def sj_forward(xi):
            sj_functional.reset_net(node)
            return node(xi)
        candidates["spikingjelly"] = timed(sj_forward)

    norse = import_peer("norse.torch")
    if isinstance(norse, str):
        skipped.append({"name": f"lif_layer_{kind}_vs_norse", "skipped": norse})
    else:
        # dt * tau_mem_inv = 1 - beta: v <- v + (1 - beta)(x - v), the same membrane.
        p = norse.LIFBoxParameters()._replace(
            tau_mem_inv=torch.as_tensor((1.0 - beta) / 1e-3), v_leak=torch.as_tensor(0.0),
            v_th=torch.as_tensor(1.0), v_reset=torch.as_tensor(0.0))
        cell = norse.LIFBoxCell(p=p, dt=1e-3)

        def norse_forward(xi):
            state = None
            out = []
            for x_t in xi:
                z, state = cell(x_t, state)
                out.append(z)
            return torch.stack(out)
        candidates["norse"] = timed(norse_forward)

    if not train:
        bn = import_bindsnet_nodes()
        if isinstance(bn, str):
            skipped.append({"name": f"lif_layer_{kind}_vs_bindsnet", "skipped": bn})
        else:
            t_steps, batch, n = x.shape
            nodes = bn.LIFNodes(n=n, thresh=1.0, rest=0.0, reset=0.0, refrac=0,
                                tc_decay=1.0 / (1.0 - beta))
            nodes.compute_decays(1.0)

            def bindsnet_forward(xi):
                nodes.set_batch_size(batch)
                nodes.reset_state_variables()
                out = []
                for x_t in xi * (1.0 - beta):
                    nodes.forward(x_t)
                    out.append(nodes.s.clone())
                return torch.stack(out)
            candidates["bindsnet"] = timed(bindsnet_forward)
    return candidates, skipped


def torch_rows(quick: bool, repeats: int) -> list[dict]:
    torch = import_peer("torch")
    if isinstance(torch, str):
        return [{"name": "lif_layer_vs_torch_peers", "skipped": torch}]
    t_steps, batch, n = (10, 4, 64) if quick else (100, 32, 1024)
    gen = torch.Generator().manual_seed(13)
    x = torch.rand((t_steps, batch, n), generator=gen, dtype=torch.float32) * 2.5
    beta = 0.9
    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # one thread, as the other torch benches: OpenMP spin-waiting
    try:                        # on a shared CPU swamps the ratios
        return _torch_ratio_rows(torch, x, beta, t_steps, batch, n, repeats)
    finally:
        torch.set_num_threads(threads)


def _torch_ratio_rows(torch, x, beta, t_steps, batch, n, repeats) -> list[dict]:
    rows: list[dict] = []
    for train in (True, False):
        kind = "fwd+bwd" if train else "fwd"
        candidates, skipped = _torch_candidates(torch, x, beta, train)
        rows.extend(skipped)
        for peer, fn in list(candidates.items()):
            try:
                fn()
            except Exception as err:  # noqa: BLE001 - a peer that fails is a row, not a crash
                if peer == "bioplastic":
                    raise
                del candidates[peer]
                rows.append({"name": f"lif_layer_{kind}_vs_{peer}",
                             "skipped": f"{type(err).__name__}: {err}"})
        med = interleaved_medians(candidates, repeats)
        for peer, seconds in med.items():
            if peer == "bioplastic":
                continue
            rows.append({"name": f"lif_layer_{kind}_vs_{peer}",
                         "workload": f"torch LIF layer T={t_steps} B={batch} N={n} float32 {kind}",
                         "bioplastic_s": med["bioplastic"], "peer_s": seconds,
                         "ratio": med["bioplastic"] / seconds})
    return rows


# --------------------------------------------------------------------------- Diehl & Cook
#: Diehl & Cook workload: excitatory (= inhibitory) neurons, presentations, ms each, dt in ms.
DIEHL_COOK = {"n": 100, "presentations": 3, "present_ms": 350.0, "dt_ms": 0.5}
DIEHL_COOK_QUICK = {"n": 20, "presentations": 1, "present_ms": 20.0, "dt_ms": 0.5}
#: Per-presentation weight normalisation of both networks (BindsNET's ``norm`` default).
W_SUM = 78.4


def _diehl_cook_ours(blocks, w0, dt_ms):
    """A callable running bioplastic's Diehl & Cook network with STDP over ``blocks``
    ``(presentations, steps, 784)`` (weights normalised at the start of each), and its
    result dict (``exc_spikes``)."""
    from ..neurons.wta import (
        WTAParams,
        input_connectivity,
        wta_advance,
        wta_init,
        wta_normalise,
        wta_prepare,
    )
    from ..rules.stdp import STDPParams, post_index
    from ..simulate import simulate_blocks

    n = w0.shape[0]
    params = WTAParams(dt_ms=dt_ms, w_sum=W_SUM)
    conn = input_connectivity(w0, dt_ms=dt_ms)
    args = (wta_prepare(params, STDPParams()), conn, post_index(conn.post, n))
    state0 = wta_init(n, params, conn)
    result: dict = {}

    def run():
        trace = simulate_blocks(wta_advance, blocks, state0, *args, on_block=wta_normalise)
        result["exc_spikes"] = int(trace.spikes[..., :n].sum())
    return run, result


def _diehl_cook_bindsnet(models, torch, blocks, w0, dt_ms):
    """BindsNET's ``DiehlAndCook2015`` (its defaults: PostPre STDP, current synapses) on the
    same input spikes and initial weights; each presentation is one ``network.run`` followed
    by ``reset_state_variables`` (as its examples do)."""
    n = w0.shape[0]
    n_steps = blocks.shape[1]
    torch.manual_seed(13)
    net = models.DiehlAndCook2015(n_inpt=784, n_neurons=n, dt=dt_ms, norm=W_SUM,
                                  inpt_shape=(1, 28, 28))
    weight = net.connections[("X", "Ae")].pipeline[0]
    weight.value.data.copy_(torch.as_tensor(w0.T, dtype=weight.value.dtype))   # (784, n)
    x = torch.as_tensor(blocks).view(blocks.shape[0], n_steps, 1, 1, 28, 28)
    result: dict = {}

    def run():
        for image in x:
            net.run(inputs={"X": image}, time=n_steps * dt_ms)
            net.reset_state_variables()
    return run, result


def diehl_cook_rows(quick: bool, repeats: int) -> list[dict]:
    """Diehl & Cook 784 -> n + n with STDP, bioplastic against BindsNET (interleaved)."""
    from .wta import workload

    models = import_bindsnet("bindsnet.models")
    torch = import_peer("torch")
    if isinstance(models, str) or isinstance(torch, str):
        reason = models if isinstance(models, str) else torch
        return [{"name": "diehl_cook_vs_bindsnet", "skipped": reason}]
    cfg = DIEHL_COOK_QUICK if quick else DIEHL_COOK
    n, dt_ms = cfg["n"], cfg["dt_ms"]
    n_steps = int(round(cfg["present_ms"] / dt_ms))
    data = workload(13, n, cfg["presentations"], n_steps, 0)
    ours, ours_result = _diehl_cook_ours(data["blocks"], data["w0"], dt_ms)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # one thread, as the torch rows
    try:
        peer, _ = _diehl_cook_bindsnet(models, torch, data["blocks"], data["w0"], dt_ms)
        med = interleaved_medians({"bioplastic": ours, "bindsnet": peer}, repeats)
    except Exception as err:  # noqa: BLE001 - a peer that fails is a row, not a crash
        return [{"name": "diehl_cook_vs_bindsnet", "skipped": f"{type(err).__name__}: {err}"}]
    finally:
        torch.set_num_threads(threads)
    return [{
        "name": "diehl_cook_vs_bindsnet",
        "workload": f"Diehl & Cook 784 -> {n} + {n}, STDP, {cfg['presentations']} x "
                    f"{cfg['present_ms']:g} ms at dt {dt_ms:g} ms",
        "neurons": 2 * n, "steps": cfg["presentations"] * n_steps,
        "input_spikes": int(data["blocks"].sum()), "exc_spikes": ours_result["exc_spikes"],
        "bioplastic_s": med["bioplastic"], "peer_s": med["bindsnet"],
        "ratio": med["bioplastic"] / med["bindsnet"], "load_average": _load(),
        "semantics": "bindsnet_diehl_cook",
    }]


# --------------------------------------------------------------------------- scaling
def bytes_per_neuron_step(homogeneous: bool) -> int:
    """Bytes the LIF neuron update moves per neuron-step, counted from ``lif_advance``.

    Read: drive, ``v``, ``theta``, ``last_spike`` (8 B each) and, for per-neuron parameters,
    the five arrays of the groups slot (``decay_theta``, ``ref_steps``, ``decay_m``, ``v_rest``,
    ``v_th``: 40 B; the reset slot reads ``v_reset``/``theta_plus`` only for spiking neurons).
    Written: ``v``, ``theta`` (16 B). Flags: ``not_refractory``, ``spikes`` (zeroed, written,
    copied to the history ring and the output, read by the resets): about 8 B. Homogeneous
    parameters are read once per step (stride-0 views), not per neuron. Delivery is counted
    apart, per synaptic event (``post``, ``weight``, 16 B, plus the target's ``v``).
    """
    return (32 + 16 + 8) + (0 if homogeneous else 40)


def scaling_rows(quick: bool, repeats: int) -> list[dict]:
    """bioplastic alone from 1k to 100k neurons (about 100 synapses per neuron, zero delays),
    heterogeneous and homogeneous parameters, next to this machine's memory bandwidth measured
    in the same call. Homogeneous rows also time the same network with per-neuron parameter
    arrays (``lif_prepare(..., hoist=False)``), interleaved, to show what the scalar
    specialisation saves; both give identical spikes (checked)."""
    from ..neurons.lif import lif_advance, lif_init, lif_prepare
    from ..simulate import simulate

    bandwidth = bandwidth_row(quick, repeats)["gb_per_s"]
    sizes = ((500, 100), (2000, 100)) if quick else ((1000, 1000), (10_000, 1000),
                                                      (50_000, 300), (100_000, 300))
    rows = []
    for n, n_steps in sizes:
        for heterogeneous in (True, False):
            params, drive, conn, v0 = network_case(n, n_steps, heterogeneous=heterogeneous)
            state = lif_init(n, params, conn, v0_mv=v0)
            traces: dict = {}
            candidates = {}
            variants = {"bioplastic": True} if heterogeneous else {"bioplastic": True,
                                                                    "arrays": False}
            for name, hoist in variants.items():
                kparams = lif_prepare(params, n, hoist=hoist)

                def run(kparams=kparams, name=name, state=state, drive=drive, conn=conn,
                        traces=traces):
                    traces[name] = simulate(lif_advance, drive, state, kparams, conn)
                candidates[name] = run
            med = interleaved_medians(candidates, repeats)
            spikes = traces["bioplastic"].spikes
            events = int(spikes.sum()) * conn.n_synapses / n     # mean out-degree per spike
            per_neuron = bytes_per_neuron_step(not heterogeneous)
            moved = n * n_steps * per_neuron + events * 16
            row = {
                "name": "lif_scaling_" + ("heterogeneous" if heterogeneous else "homogeneous"),
                "neurons": n, "synapses": conn.n_synapses, "steps": n_steps,
                "spikes": int(spikes.sum()), "bioplastic_s": med["bioplastic"],
                "neuron_steps_per_s": n * n_steps / med["bioplastic"],
                "syn_events_per_s": events / med["bioplastic"],
                "bytes_per_neuron_step": per_neuron,
                "memory_bandwidth_gb_per_s": bandwidth,
                "bandwidth_bound_s": moved / (bandwidth * 1e9),
            }
            if "arrays" in med:
                row["per_neuron_arrays_s"] = med["arrays"]
                row["bytes_per_neuron_step_arrays"] = bytes_per_neuron_step(False)
                row["identical"] = bool(np.array_equal(spikes, traces["arrays"].spikes))
            rows.append(row)
    return rows


def scaling_table(rows: list[dict]) -> str:
    """Markdown table of the scaling rows (empty when there are none)."""
    rows = [r for r in rows if r.get("name", "").startswith("lif_scaling_")]
    if not rows:
        return ""
    lines = ["| parameters | neurons | steps | s | neuron-steps/s | syn events/s | B/neuron-step "
             "| bandwidth bound s | per-neuron arrays s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        arrays = r.get("per_neuron_arrays_s")
        lines.append(
            f"| {r['name'].removeprefix('lif_scaling_')} | {r['neurons']} | {r['steps']} | "
            f"{r['bioplastic_s']:.4g} | {r['neuron_steps_per_s']:.3g} | "
            f"{r['syn_events_per_s']:.3g} | {r['bytes_per_neuron_step']} | "
            f"{r['bandwidth_bound_s']:.3g} | "
            + ("–" if arrays is None else f"{arrays:.4g} ({r['bytes_per_neuron_step_arrays']} B"
               + (", identical spikes" if r.get("identical") else ", SPIKES DIFFER") + ")")
            + " |")
    bandwidth = rows[0]["memory_bandwidth_gb_per_s"]
    return "\n".join(lines + ["", f"memory bandwidth in the same run: {bandwidth:.3g} GB/s "
                               "(NumPy copy, bytes read + written)"])


# --------------------------------------------------------------------------- bandwidth
def bandwidth_row(quick: bool, repeats: int) -> dict:
    """Memory bandwidth of this machine now: a large NumPy copy (bytes read + written / s)."""
    n_bytes = (16 if quick else 256) * 2**20
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    med = interleaved_medians({"copy": lambda: np.copyto(dst, src)}, max(repeats, 3))
    return {"name": "memory_bandwidth_numpy_copy", "bytes": 2 * n_bytes,
            "gb_per_s": 2 * n_bytes / med["copy"] / 1e9}


def ratio_table(rows: list[dict]) -> str:
    """A Markdown table of the measured rows (ratio = bioplastic / peer; < 1: bioplastic faster)
    and one line per skipped peer, then the semantic differences of the peers that ran."""
    lines = ["| workload | neurons | peer | bioplastic s | peer s | ratio | note |",
             "|---|---|---|---|---|---|---|"]
    notes, peers = [], set()
    for row in rows:
        if "skipped" in row:
            notes.append(f"skipped {row['name']}: {row['skipped']}")
            continue
        if "ratio" not in row:
            continue
        peer = row["name"].split("_vs_")[-1]
        peers.add(row.get("semantics", peer.split("_")[0]))
        extra = []
        if "identical" in row:
            extra.append("identical spikes" if row["identical"] else "SPIKES DIFFER")
        if row.get("peer_build_s") is not None:
            extra.append(f"build {row['peer_build_s']:.1f} s (excluded)")
        if row.get("load_average") is not None:
            extra.append(f"load {row['load_average']:.1f}")
        ours = row.get("bioplastic_cpu_s", row["bioplastic_s"])
        if "bioplastic_cpu_s" in row:
            extra.append(f"CPU time both sides (wall ratio {row['ratio_wall']:.3g})")
        lines.append(f"| {row['workload']} | {row.get('neurons', '')} | {peer} | "
                     f"{ours:.4g} | {row['peer_s']:.4g} | {row['ratio']:.3g} | "
                     f"{'; '.join(extra)} |")
    semantics = [f"- {p}: {SEMANTICS[p]}" for p in sorted(peers) if p in SEMANTICS]
    return "\n".join(lines + [""] + notes + ([""] + semantics if semantics else []))


def run_peers(quick: bool, repeats: int | None = None, *,
              parts: tuple[str, ...] = ("bandwidth", "network", "scaling", "torch",
                                        "diehl_cook")
              ) -> list[dict]:
    """Every peer workload; rows as the other benchmarks' (``ratio`` = bioplastic / peer)."""
    repeats = (1 if quick else 3) if repeats is None else repeats
    rows: list[dict] = []
    if "bandwidth" in parts:
        rows.append(bandwidth_row(quick, repeats))
    if "network" in parts:
        rows.extend(network_rows(quick, repeats))
    if "scaling" in parts:
        rows.extend(scaling_rows(quick, repeats))
    if "torch" in parts:
        rows.extend(torch_rows(quick, repeats))
    if "diehl_cook" in parts:
        rows.extend(diehl_cook_rows(quick, repeats))
    return rows


#: Run by ``bioplastic bench --peers`` only (not by a plain ``bioplastic bench``).
PEER_BENCHMARKS = (
    Benchmark("peers", "the same workloads against Brian2, snnTorch, SpikingJelly, Norse, "
              "BindsNET (whichever are installed)", run_peers),
)
BENCHMARKS: tuple = ()
