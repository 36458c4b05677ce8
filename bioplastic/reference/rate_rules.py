"""Brian2 twins of the rate rules: SoftHebb (2022, ICLR 2023), hard WTA, Krotov–Hopfield, Oja,
Hebb and Instar.

The rules are discrete maps over repeated presentations, so the twin is written as Brian2
``run_regularly`` statements and ``(summed)`` variables (``docs/twinning.md``, form
A): one time step = one presentation of one input vector (batch 1) = one weight update.
Cross-unit reductions (the pre-activation, the softmax normaliser, the winner and the ranking,
the row norms) are ``(summed)`` variables, which Brian2's numpy target sums sequentially in
synapse order (``bincount``) — the order of the kernels' loops.

Groups and the schedule inside the ``groups`` slot (``order`` = position; summed updaters run at
``target.order − 1``)::

    0  inp.run_regularly      x = X(t, i)                                 (pre-drawn input)
    1  pot ← syn_in (summed)  u = Σ_i w x_i ;  r2 = Σ_i w²                 (old weights)
    3  post ← rank (summed)   n_above = Σ_l [u_l > u_k or (u_l = u_k and l < k)]
    4  post.run_regularly     win = (n_above == 0) ; [ranked: g = win − Δ·(n_above == k−1)]
    5  top ← post (summed)    top = Σ_k win_k u_k                          (= max u, exactly)
    7  post.run_regularly     a = u − top ; ex = exp(a/τ)
    8  norm ← post (summed)   Z = Σ_k ex_k
    10 post.run_regularly     s = ex/Z ; y = s or s·(2·win − 1) or win or g or u ;
                              d = y·u (Oja form) or y (Instar) or 0 (Hebb)
                              eta = η₀ (|√r2 − 1| + 1e-10)^power_lr   (or η₀)
    12 syn_in.run_regularly   dw = y_post·x_pre − d_post·w ; w = w + eta_post·dw

``pot`` holds ``u`` and ``r2``; ``post`` sees them through linked variables, and ``pot`` sees
``y``, ``d`` and ``eta`` of ``post`` the same way. Monitors record ``when='end'``.

Kernel side (:func:`run_rate_rule_kernel`): per step, ``u`` is summed in input order (the order
``bincount`` uses; the library's rules take ``u`` from the caller), then the library's rule
(``soft_hebb_dw``; ``oja_dw``, ``instar_dw`` or ``hebb_dw`` with ``hard_wta``/``ranked_wta``/
linear units) and ``apply_update``. The
Krotov–Hopfield case is ``oja_dw(x, ranked_wta(u, k, Δ), w, u=u)`` with p = 2, which
``krotov_hopfield_dw`` equals apart from the summation order of its BLAS current (unit-tested).
Not twinned: the max normalisation of ``dw`` (a global max, which Brian2 has no reduction
for; unit-tested against the naive transcription instead) and Sanger's rule (its decay sums
over other synapses of the same input, which needs a synapse-indexed reduction).

Tier: T0. The softmax kernel evaluates ``exp`` with NumPy, as Brian2's numpy target does, so
all seven cases are bit-identical here; on another CPU NumPy's SIMD ``exp`` may change in the last
bit on both sides alike (§3.7), which T0's few-eps tolerance covers for the stored goldens.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from ..rules.apply import NORM_RATE_OFFSET, UpdateParams, apply_update
from ..rules.hebbian import hebb_dw, instar_dw, oja_dw
from ..rules.inhibition import hard_wta, ranked_wta
from ..rules.softhebb import SoftHebbParams, soft_hebb_dw, soft_hebb_post
from ._brian import exact_prefs, network, recorded, scheduling_summary
from ._cases import TwinCase, TwinResult

__all__ = ["RateRuleSetup", "COMPETITIONS", "run_rate_rule_twin", "run_rate_rule_kernel",
           "CASES"]

#: Post factor y per competition, as Brian2 statements over ``s`` (softmax), ``win``, ``g``.
COMPETITIONS = {
    "soft": "y = s",
    "soft_anti": "y = s*(2*win - 1)",
    "hard": "y = win",
    "ranked": "y = g",
    "linear": "y = u",
}


class RateRuleSetup(NamedTuple):
    competition: str = "soft"   # a key of COMPETITIONS
    temperature: float = 1.0    # τ of the softmax (soft, soft_anti)
    rank_k: int = 2             # ranked: the unit ranked k gets −delta
    delta: float = 0.4
    learning_rate: float = 0.05
    power_lr: float = 0.0       # > 0: norm-dependent rate
    decay: str = "oja"          # weight decay: "oja" (y·u), "instar" (y) or "none" (plain Hebb)


#: Decay factor d per rule, as the Brian2 statement the twin runs.
DECAYS = {"oja": "d = y*u", "instar": "d = y", "none": "d = 0"}


# ---------------------------------------------------------------------------------- kernel
@njit
def sequential_pre_activation(x, w):
    """``u_k = Σ_i w_ki x_i`` summed in input order, as Brian2's ``bincount``.

    x (n_pre,), w (n_post, n_pre) -> u (n_post,).
    """
    n_post, n_pre = w.shape
    u = np.zeros(n_post)
    for k in range(n_post):
        total = 0.0
        for i in range(n_pre):
            total += w[k, i] * x[i]
        u[k] = total
    return u


def _post_and_dw(x, u, w, setup: RateRuleSetup):
    """(y, dw) for one presentation through the library's public rules."""
    if setup.competition in ("soft", "soft_anti"):
        params = SoftHebbParams(setup.temperature, setup.competition == "soft_anti")
        return soft_hebb_post(u, params), soft_hebb_dw(x, u, w, params)
    if setup.competition == "hard":
        y = hard_wta(u)
    elif setup.competition == "ranked":
        y = ranked_wta(u, setup.rank_k, setup.delta)
    else:
        y = u                                           # linear units (classic Oja, Hebb)
    if setup.decay == "none":
        return y, hebb_dw(x, y, w)
    if setup.decay == "instar":
        return y, instar_dw(x, y, w)
    return y, oja_dw(x, y, w, u=u)


def run_rate_rule_kernel(setup: RateRuleSetup, inputs: np.ndarray, w0: np.ndarray) -> TwinResult:
    """Present ``inputs`` (T, n_pre) one by one, updating ``w0`` (n_post, n_pre) each step.

    State: ``w`` (T, n_post, n_pre), ``u`` and ``y`` (T, n_post), all after each step.
    """
    update = UpdateParams(setup.learning_rate, power_lr=setup.power_lr)
    w = np.array(w0, dtype=np.float64)
    ws, us, ys = [], [], []
    for x in inputs:
        u = sequential_pre_activation(x, w)[None]
        y, dw = _post_and_dw(x[None], u, w, setup)
        w = apply_update(w, dw, update)
        ws.append(w)
        us.append(u[0])
        ys.append(y[0])
    empty = np.zeros(0, dtype=np.int64)
    return TwinResult(empty, empty, {"w": np.array(ws), "u": np.array(us), "y": np.array(ys)})


# ------------------------------------------------------------------------------------ twin
def _post_code(setup: RateRuleSetup) -> str:
    decay = DECAYS[setup.decay]
    rate = ("eta = eta0*(abs(sqrt(r2) - 1) + rate_offset)**power_lr" if setup.power_lr > 0
            else "eta = eta0")
    return "\n".join(["s = ex/Z", COMPETITIONS[setup.competition], decay, rate])


def _build(b2, setup: RateRuleSetup, w0: np.ndarray, dt):
    n_post, n_pre = w0.shape
    inp = b2.NeuronGroup(n_pre, "x : 1", dt=dt, name="rr_inp", order=0)
    inp.run_regularly("x = X(t, i)", when="groups", order=0, name="rr_present")
    pot = b2.NeuronGroup(n_post, """u : 1
        r2 : 1
        y : 1 (linked)
        d : 1 (linked)
        eta : 1 (linked)""", dt=dt, name="rr_pot", order=2)
    post = b2.NeuronGroup(n_post, """u : 1 (linked)
        r2 : 1 (linked)
        n_above : 1
        win : 1
        g : 1
        a : 1
        ex : 1
        s : 1
        y : 1
        d : 1
        eta : 1
        top : 1 (linked)
        Z : 1 (linked)""", dt=dt, name="rr_post", order=4)
    top = b2.NeuronGroup(1, "top : 1", dt=dt, name="rr_top", order=6)
    norm = b2.NeuronGroup(1, "Z : 1", dt=dt, name="rr_norm", order=9)
    post.u = b2.linked_var(pot, "u")
    post.r2 = b2.linked_var(pot, "r2")
    post.top = b2.linked_var(top, "top", index=np.zeros(n_post, dtype=int))
    post.Z = b2.linked_var(norm, "Z", index=np.zeros(n_post, dtype=int))
    pot.y, pot.d, pot.eta = (b2.linked_var(post, name) for name in ("y", "d", "eta"))

    # Input synapses in pre-major (i, j) order: bincount sums each u_k over i ascending.
    syn_in = b2.Synapses(inp, pot, """w : 1
        dw : 1
        u_post = w*x_pre : 1 (summed)
        r2_post = w*w : 1 (summed)""", dt=dt, name="rr_syn_in", order=12)
    pre, post_idx = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
    syn_in.connect(i=pre.ravel(), j=post_idx.ravel())
    syn_in.w = w0.T.ravel()                             # synapse (i, k) holds w[k, i]
    syn_in.run_regularly("dw = y_post*x_pre - d_post*w\nw = w + eta_post*dw", when="groups",
                         order=12, name="rr_update")

    rank = b2.Synapses(pot, post, "n_above_post = int(u_pre > u_post or (u_pre == u_post and "
                       "i < j)) : 1 (summed)", dt=dt, name="rr_rank")
    k_idx, l_idx = np.meshgrid(np.arange(n_post), np.arange(n_post), indexing="ij")
    rank.connect(i=k_idx.ravel(), j=l_idx.ravel())
    post.run_regularly("win = int(n_above == 0)\ng = win - delta*int(n_above == rank_k - 1)",
                       when="groups", order=4, name="rr_winner")
    to_top = b2.Synapses(post, top, "top_post = win_pre*u_pre : 1 (summed)", dt=dt,
                         name="rr_to_top")
    to_top.connect(i=np.arange(n_post), j=np.zeros(n_post, dtype=int))
    post.run_regularly("a = u - top\nex = exp(a/tau_soft)", when="groups", order=7,
                       name="rr_exp")
    to_norm = b2.Synapses(post, norm, "Z_post = ex_pre : 1 (summed)", dt=dt, name="rr_to_norm")
    to_norm.connect(i=np.arange(n_post), j=np.zeros(n_post, dtype=int))
    post.run_regularly(_post_code(setup), when="groups", order=10, name="rr_post_factor")

    monitors = (b2.StateMonitor(syn_in, "w", record=True, when="end", name="rr_w_monitor"),
                b2.StateMonitor(post, ["u", "y"], record=True, when="end", name="rr_monitor"))
    objects = [inp, pot, post, top, norm, syn_in, rank, to_top, to_norm, *monitors]
    return objects, monitors


def run_rate_rule_twin(setup: RateRuleSetup, inputs: np.ndarray, w0: np.ndarray) -> TwinResult:
    """The Brian2 run of :func:`run_rate_rule_kernel` (numpy target); same outputs."""
    if setup.competition not in COMPETITIONS:
        raise ValueError(f"competition must be one of {sorted(COMPETITIONS)}, got "
                         f"{setup.competition!r}")
    if setup.decay not in DECAYS:
        raise ValueError(f"decay must be one of {sorted(DECAYS)}, got {setup.decay!r}")
    n_steps = inputs.shape[0]
    n_post, n_pre = w0.shape
    with exact_prefs() as b2:
        dt = 1.0 * b2.ms                       # a discrete map: dt only labels the steps
        namespace = {"X": b2.TimedArray(inputs, dt=dt), "tau_soft": setup.temperature,
                     "delta": setup.delta, "rank_k": setup.rank_k, "eta0": setup.learning_rate,
                     "power_lr": setup.power_lr, "rate_offset": NORM_RATE_OFFSET}
        objects, (w_mon, post_mon) = _build(b2, setup, np.asarray(w0, np.float64), dt)
        net = network(*objects)
        net.run(n_steps * dt, namespace=namespace)
        # Recorded synapse order is (i, k) pre-major: reshape to (T, n_pre, n_post), transpose.
        w = recorded(w_mon, "w").reshape(n_steps, n_pre, n_post).transpose(0, 2, 1)
        state = {"w": np.ascontiguousarray(w), "u": recorded(post_mon, "u"),
                 "y": recorded(post_mon, "y")}
        schedule = scheduling_summary(net)
    empty = np.zeros(0, dtype=np.int64)
    return TwinResult(empty, empty, state, schedule)


# ----------------------------------------------------------------------------------- cases
#: The twinned setups. Rates are the spec's digits values scaled for unnormalised updates.
SETUPS = {
    "softhebb_2022": RateRuleSetup("soft", temperature=0.5, learning_rate=0.02),
    "softhebb_iclr": RateRuleSetup("soft_anti", temperature=0.5, learning_rate=0.02,
                                   power_lr=0.5),
    "hard_wta": RateRuleSetup("hard", learning_rate=0.02),
    "krotov_hopfield": RateRuleSetup("ranked", rank_k=2, delta=0.4, learning_rate=0.02),
    "oja": RateRuleSetup("linear", learning_rate=0.005),
    "hebb": RateRuleSetup("linear", learning_rate=0.001, decay="none"),
    "instar": RateRuleSetup("hard", learning_rate=0.02, decay="instar"),
}


def make_presentations(seed: int, n_steps: int = 100, n_pre: int = 10, n_post: int = 6) -> dict:
    """Pre-drawn inputs (T, n_pre) around 3 prototypes and initial weights of norm about 2."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(3, n_pre))
    inputs = prototypes[rng.integers(3, size=n_steps)] + 0.3 * rng.normal(size=(n_steps, n_pre))
    return {"inputs": inputs, "w0": rng.normal(size=(n_post, n_pre)) * 2 / np.sqrt(n_pre)}


def _case(name: str, description: str) -> TwinCase:
    setup = SETUPS[name]
    return TwinCase(
        name=f"rate_{name}",
        model="rate_rules",
        tier="T0",
        description=description + " (100 presentations, 10 inputs, 6 units)",
        make=make_presentations,
        kernel=lambda d: run_rate_rule_kernel(setup, d["inputs"], d["w0"]),
        twin=lambda d: run_rate_rule_twin(setup, d["inputs"], d["w0"]),
        seed=20261123,
        n_units=lambda d: d["w0"].shape[0],
        n_steps=lambda d: d["inputs"].shape[0],
    )


CASES = (
    _case("softhebb_2022", "SoftHebb 2022: softmax post factor, tau 0.5, constant rate"),
    _case("softhebb_iclr", "SoftHebb ICLR 2023: anti-Hebbian losers, norm-dependent rate"),
    _case("hard_wta", "competitive learning: hard WTA post factor, Oja decay"),
    _case("krotov_hopfield", "Krotov-Hopfield ranking (k=2, delta=0.4), p=2"),
    _case("oja", "Oja's rule y = u on 6 units"),
    _case("hebb", "plain Hebb y = u, no decay (weights grow; finite over 100 steps)"),
    _case("instar", "Grossberg instar with hard WTA: the winner moves towards x"),
)
