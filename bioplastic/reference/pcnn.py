"""Brian2 twin of :mod:`bioplastic.neurons.pcnn` (exactness: docs/twins.md; model: docs/pcnn.md).

The PCNN is a map, not an ODE, so the twin has no state updater. Every variable is a plain
dimensionless parameter (``F, L, U, E, Y : 1``) and one ``run_regularly(when='groups',
order=0)`` executes the map's statements sequentially::

    F = dF*F + VF*cF + S
    L = dL*L + VL*cL
    U = dU*U + F*(1 + beta*L)
    Y = int(U > E)
    E = dE*E + VE*Y

Brian2 2.9.0 prints these (numpy target, loop-invariant optimisations off) as
``((dF*F) + (VF*cF)) + S`` etc.; the kernel uses the same expression forms. The neighbour sums
``cF = M ⋆ Y`` and ``cL = W ⋆ Y`` are ``(summed)`` variables of two ``Synapses`` objects
(``cF_post = wM*Y_pre``), whose updaters run in ``groups`` at order −1, i.e. before the map, so
they read the previous iteration's Y — never ``on_pre``, which would cost one decay factor
(brian2_twins.md §6 "trap"). Synapses are created with ``connect(i=, j=)`` sorted by
``(pre, post)``, zero-padded borders simply have no synapse, a kernel's centre weight is an
``i == j`` synapse, and zero weights have none; the numpy target's ``bincount`` then sums each
target in increasing presynaptic index, as the kernel does. Decay factors and amplitudes are
per-neuron ``(constant)`` parameters holding the kernel's own numbers.

Recording: ``threshold='Y > 0.5'`` with an empty reset feeds a ``SpikeMonitor``;
``StateMonitor(when='end')`` records post-iteration values. Index offset: Brian step ``k`` is
kernel iteration ``n = k + 1``, i.e. ``simulate``'s row ``k``. Neuron index is the flat
``(c, i, j)`` index of the ``(C, H, W)`` stack. Fast linking has no Brian2 form (a fixed point
inside one step) and is checked against the naive NumPy transcription instead.
"""

from __future__ import annotations

import numpy as np

from ..neurons.pcnn import PCNNParams, pcnn_advance, pcnn_init, pcnn_prepare
from ..simulate import simulate
from ._brian import exact_prefs, network, recorded, run_network, scheduling_summary, spike_pairs
from ._cases import TwinCase, TwinResult

__all__ = ["EQUATIONS", "MAP_CODE", "coupling_synapses", "run_pcnn_twin", "run_pcnn_kernel",
           "CASES"]

EQUATIONS = """
F : 1
L : 1
U : 1
E : 1
Y : 1
cF : 1
cL : 1
S : 1
dF : 1 (constant)
dL : 1 (constant)
dU : 1 (constant)
dE : 1 (constant)
VF : 1 (constant)
VL : 1 (constant)
VE : 1 (constant)
beta : 1 (constant)
"""
MAP_CODE = """F = dF*F + VF*cF + S
L = dL*L + VL*cL
U = dU*U + F*(1 + beta*L)
Y = int(U > E)
E = dE*E + VE*Y"""
#: The map with a time-varying stimulus read from a TimedArray ``S_ext(t, i)``.
MAP_CODE_TIMED = MAP_CODE.replace("+ S\n", "+ S_ext(t, i)\n")
_STATE = ("F", "L", "U", "E")


def coupling_synapses(weights: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's coupling as synapse arrays ``(pre, post, weight)``, sorted by (pre, post).

    ``weights`` is the 4-D ``(C, G, kh, kw)`` form of :func:`pcnn_prepare`; ``shape`` is
    ``(C, H, W)``. Post ``(c, i, j)`` receives ``K[c, g, a, b]`` from pre ``(c', i + a - kh//2,
    j + b - kw//2)`` with ``c' = c`` (G = 1) or ``c' = g`` (G = C); out-of-image and zero-weight
    terms have no synapse. Indices are flat ``(c, i, j)``.
    """
    n_maps, height, width = shape
    groups, kh, kw = weights.shape[1:]
    c, g, a, b, i, j = np.meshgrid(np.arange(n_maps), np.arange(groups), np.arange(kh),
                                   np.arange(kw), np.arange(height), np.arange(width),
                                   indexing="ij")
    cp = c if groups == 1 else g
    ip, jp = i + a - kh // 2, j + b - kw // 2
    w = weights[c, g, a, b]
    keep = (ip >= 0) & (ip < height) & (jp >= 0) & (jp < width) & (w != 0.0)
    pre = ((cp * height + ip) * width + jp)[keep]
    post = ((c * height + i) * width + j)[keep]
    order = np.lexsort((post, pre))
    return pre[order].astype(np.int64), post[order].astype(np.int64), w[keep][order]


def _set_parameters(group, kp, shape) -> None:
    n_per_map = shape[1] * shape[2]
    for brian_name, field in (("dF", "decay_f"), ("dL", "decay_l"), ("dU", "decay_u"),
                              ("dE", "decay_e"), ("VF", "v_f"), ("VL", "v_l"), ("VE", "v_e"),
                              ("beta", "beta")):
        setattr(group, brian_name, np.repeat(getattr(kp, field), n_per_map))


def _coupling(b2, group, weights, shape, target: str, dt):
    pre, post, w = coupling_synapses(weights, shape)
    if pre.size == 0:
        return []
    name = "feeding" if target == "cF" else "linking"
    syn = b2.Synapses(group, group, f"w : 1 (constant)\n{target}_post = w*Y_pre : 1 (summed)",
                      dt=dt, name=name)
    syn.connect(i=pre, j=post)
    syn.w = w
    return [syn]


def _build(b2, params: PCNNParams, drive: np.ndarray, record_idx, dt):
    shape = drive.shape[1:]
    kp = pcnn_prepare(params, shape)
    feed, link = kp.feeding_weights, kp.linking_weights
    static = bool(np.all(drive == drive[0]))
    group = b2.NeuronGroup(int(np.prod(shape)), EQUATIONS, threshold="Y > 0.5", reset="",
                           dt=dt, name="pcnn", order=0)
    _set_parameters(group, kp, shape)
    group.E = pcnn_init(shape, params).e.ravel()
    if static:
        group.S = drive[0].ravel()
    group.run_regularly(MAP_CODE if static else MAP_CODE_TIMED, when="groups", order=0,
                        name="pcnn_map")
    synapses = _coupling(b2, group, feed, shape, "cF", dt) + \
        _coupling(b2, group, link, shape, "cL", dt)
    state_mon = b2.StateMonitor(group, list(_STATE), record=record_idx, when="end",
                                name="state_monitor")
    spike_mon = b2.SpikeMonitor(group, name="spike_monitor")
    namespace = {} if static else {
        "S_ext": b2.TimedArray(drive.reshape(drive.shape[0], -1), dt=dt)}
    return [group, *synapses, state_mon, spike_mon], state_mon, spike_mon, namespace


def run_pcnn_twin(params: PCNNParams, drive: np.ndarray, *, record_idx=None,
                  target: str = "numpy", timing: dict | None = None) -> TwinResult:
    """Run the twin on ``drive (T, C, H, W)``: spikes, recorded F/L/U/E and final state.

    ``record_idx``: flat neuron indices to record traces for (default all). ``timing``: see
    :func:`bioplastic.reference._brian.run_network`.
    """
    if params.fast_linking:
        raise ValueError("fast linking has no Brian2 twin (a fixed point inside one step); "
                         "compare it with the naive reference instead")
    n_steps = drive.shape[0]
    n = int(np.prod(drive.shape[1:]))
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    with exact_prefs(target) as b2:
        dt = 1.0 * b2.ms
        objects, state_mon, spike_mon, namespace = _build(b2, params, drive, record_idx, dt)
        net = network(*objects)
        run_network(net, n_steps, dt, namespace=namespace, timing=timing)
        steps, index = spike_pairs(spike_mon, float(dt))
        group = objects[0]
        state = {name: recorded(state_mon, name) for name in _STATE}
        state.update({f"{name}_final": np.array(getattr(group, name)[:]) for name in _STATE})
        schedule = scheduling_summary(net)
    return TwinResult(steps, index, state, schedule)


def run_pcnn_kernel(params: PCNNParams, drive: np.ndarray, *, record_idx=None) -> TwinResult:
    """The same run through :func:`bioplastic.simulate`, in the comparison form."""
    shape = drive.shape[1:]
    n = int(np.prod(shape))
    record_idx = np.arange(n) if record_idx is None else np.asarray(record_idx)
    fields = ("f", "l", "u", "e")
    trace = simulate(pcnn_advance, drive, pcnn_init(shape, params), pcnn_prepare(params, shape),
                     record=fields)
    steps, index = trace.spike_pairs()
    state = {}
    for name, field in zip(_STATE, fields, strict=True):
        state[name] = trace[field].reshape(drive.shape[0], n)[:, record_idx]
        state[f"{name}_final"] = getattr(trace.state, field).ravel().copy()
    return TwinResult(steps, index, state)


# ------------------------------------------------------------------------------------ cases


def _regions_image(rng, height: int, width: int) -> np.ndarray:
    """A piecewise-constant image of a few rectangles plus mild noise, in [0, 1]: regions of
    similar intensity that a PCNN pulses together."""
    image = np.full((height, width), rng.uniform(0.1, 0.3))
    for _ in range(4):
        top, left = rng.integers(0, height - 4), rng.integers(0, width - 4)
        h, w = rng.integers(4, height // 2 + 1), rng.integers(4, width // 2 + 1)
        image[top:top + h, left:left + w] = rng.uniform(0.3, 1.0)
    return np.clip(image + rng.normal(0.0, 0.02, image.shape), 0.0, 1.0)


def image_case(seed: int, size: int = 32, n_steps: int = 200) -> dict:
    """One map, 3×3 intra-map feeding and linking kernels (with self-terms), random parameters
    and per-neuron E[0]; a static region image."""
    rng = np.random.default_rng(seed)
    return {
        "decay_f": rng.uniform(0.6, 0.95, 1), "decay_l": rng.uniform(0.3, 0.9, 1),
        "decay_e": rng.uniform(0.6, 0.9, 1), "decay_u": np.zeros(1),
        "v_f": rng.uniform(0.05, 0.3, 1), "v_l": rng.uniform(0.1, 0.5, 1),
        "v_e": rng.uniform(3.0, 10.0, 1), "beta": rng.uniform(0.1, 1.0, 1),
        "e0": rng.uniform(0.0, 1.0, (1, size, size)),
        "feeding_kernel": rng.uniform(0.0, 1.0, (3, 3)),
        "linking_kernel": rng.uniform(0.0, 1.0, (3, 3)),
        "coupling": np.array("intra"),
        "drive": np.broadcast_to(_regions_image(rng, size, size), (n_steps, 1, size, size)),
        "record_idx": np.arange(0, size * size, max(1, size * size // 24)),
    }


def stack_case(seed: int, n_maps: int = 3, size: int = 12, n_steps: int = 250) -> dict:
    """A stack of ``n_maps`` maps with full 3×3 inter-map kernels (some inhibitory terms),
    per-map parameters, a leaky U (SCM-like ``decay_u > 0``) on one map."""
    rng = np.random.default_rng(seed)
    sign = np.where(rng.random((n_maps, n_maps, 3, 3)) < 0.2, -1.0, 1.0)
    image = np.stack([_regions_image(rng, size, size) for _ in range(n_maps)])
    return {
        "decay_f": rng.uniform(0.6, 0.95, n_maps), "decay_l": rng.uniform(0.3, 0.9, n_maps),
        "decay_e": rng.uniform(0.6, 0.9, n_maps),
        "decay_u": np.where(np.arange(n_maps) == 0, 0.2, 0.0),
        "v_f": rng.uniform(0.02, 0.1, n_maps), "v_l": rng.uniform(0.1, 0.5, n_maps),
        "v_e": rng.uniform(3.0, 10.0, n_maps), "beta": rng.uniform(0.1, 1.0, n_maps),
        "e0": rng.uniform(0.0, 1.0, (n_maps, size, size)),
        "feeding_kernel": rng.uniform(0.0, 0.5, (n_maps, n_maps, 3, 3)),
        "linking_kernel": sign * rng.uniform(0.0, 0.5, (n_maps, n_maps, 3, 3)),
        "coupling": np.array("inter"),
        "drive": np.broadcast_to(image, (n_steps,) + image.shape),
        "record_idx": np.arange(0, n_maps * size * size, 17),
    }


def unpack(inputs: dict) -> tuple[PCNNParams, np.ndarray]:
    """Turn a case dict into ``(params, drive (T, C, H, W))``."""
    fields = ("decay_f", "decay_l", "decay_e", "decay_u", "v_f", "v_l", "v_e", "beta", "e0",
              "feeding_kernel", "linking_kernel")
    params = PCNNParams(**{f: inputs[f] for f in fields}, coupling=str(inputs["coupling"]))
    return params, np.ascontiguousarray(inputs["drive"])


def _kernel_case(inputs: dict) -> TwinResult:
    params, drive = unpack(inputs)
    return run_pcnn_kernel(params, drive, record_idx=inputs["record_idx"])


def _twin_case(inputs: dict) -> TwinResult:
    params, drive = unpack(inputs)
    return run_pcnn_twin(params, drive, record_idx=inputs["record_idx"])


def _n_units(inputs: dict) -> int:
    return int(np.prod(inputs["drive"].shape[1:]))


CASES = (
    TwinCase(
        name="pcnn_image", model="pcnn", tier="T0",
        description="32×32 region image, 3×3 intra-map feeding and linking kernels with "
                    "self-terms, random parameters and E[0], 200 iterations",
        make=image_case, kernel=_kernel_case, twin=_twin_case, seed=20261123,
        n_units=_n_units, n_steps=lambda inputs: inputs["drive"].shape[0],
    ),
    TwinCase(
        name="pcnn_stack_inter", model="pcnn", tier="T0",
        description="3 maps of 12×12, full 3×3 inter-map kernels (some inhibitory), per-map "
                    "parameters, leaky U on one map, 250 iterations",
        make=stack_case, kernel=_kernel_case, twin=_twin_case, seed=20261124,
        n_units=_n_units, n_steps=lambda inputs: inputs["drive"].shape[0],
    ),
)
