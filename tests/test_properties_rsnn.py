"""Property-based bad-input suite for the delay-learning E/I network (bioplastic.neurons.rsnn):
generated malformed and mismatched pieces give a clear error or a finite result, never a crash,
never an out-of-bounds access, never a changed input.

Same contract and machinery as ``tests/test_properties.py`` (``tests/properties.py``); it runs
in the ``NUMBA_BOUNDSCHECK=1`` subprocess of ``tests/test_boundscheck.py`` and is skipped when
run directly without that flag.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bioplastic import simulate  # noqa: E402
from bioplastic.neurons import rsnn  # noqa: E402
from bioplastic.neurons.rsnn_train import (  # noqa: E402
    RDL,
    delay_weight_update,
    learner_init,
)

from .properties import Target, check_call, target_tests  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_BOUNDSCHECK") != "1",
    reason="runs in the NUMBA_BOUNDSCHECK=1 subprocess of tests/test_boundscheck.py")

_RNG = np.random.default_rng(0)
N_IN, N_MAPS, N_POS, MAX_DELAY = 5, 2, 3, 4
PARAMS = rsnn.RSNNParams(max_delay_ms=float(MAX_DELAY), theta_plus_mv=0.2)
LEARNING = RDL._replace(bounds=RDL.bounds._replace(d_max_ms=float(MAX_DELAY)))


def _network(n_pos=N_POS, max_delay=MAX_DELAY, seed=0):
    rng = np.random.default_rng(seed)
    n_exc = N_MAPS * n_pos
    syn = {"input_exc": (rng.integers(0, N_IN, 30), rng.integers(0, n_exc, 30),
                         rng.uniform(2.0, 6.0, 30), rng.integers(0, max_delay + 1, 30) * 1.0),
           "exc_exc": (rng.integers(0, n_exc, 10), rng.integers(0, n_exc, 10), 1.0,
                       rng.integers(1, max_delay + 1, 10) * 1.0),
           **rsnn.lateral_inhibition(N_MAPS, n_pos, 6.0, -4.0)}
    return rsnn.rsnn_topology(N_IN, n_exc, n_exc, syn)


TOPO, W0, D0 = _network()
X = _RNG.random((8, N_IN)) < 0.4
# a state with spikes in its ring and pending events (delays changed while spikes were queued)
_RUN = rsnn.run_rsnn(X, rsnn.rsnn_init(TOPO, PARAMS, W0, D0), TOPO, PARAMS).state
STATE = rsnn.rsnn_set_delays(_RUN, TOPO, PARAMS, np.clip(D0[::-1] + 0.0, 0, MAX_DELAY))
KP = rsnn.rsnn_prepare(PARAMS, TOPO.n_exc, TOPO.n_inh)
_INDEX = ("pre", "post", "pathway", "pathway_ptr", "src_offset", "src_count", "row_offset",
          "row", "last_spike", "delay_steps", "last_update", "by_delay", "delay_ptr",
          "spikers", "n_spikers", "pend_syn", "pend_step", "pend_pos", "ref_steps")


def _simulate_rsnn(inputs, state, params, topo):
    return simulate(rsnn.rsnn_advance, inputs, state, params, topo, record=("v",))


def _update_pieces():
    src = np.concatenate([X, rsnn.run_rsnn(X, STATE, TOPO, PARAMS).spikes], axis=1)
    return {"topo": TOPO, "delay_ms": STATE.delay_ms, "weight": STATE.w, "src_spikes": src,
            "post_spikes": src[:, N_IN:], "reward": -1.0, "learner": learner_init(TOPO),
            "dt_ms": 1.0, "learning": LEARNING}


TARGETS = [
    Target("simulate_rsnn", _simulate_rsnn,
           lambda: {"inputs": X, "state": STATE, "params": KP, "topo": TOPO}, index=_INDEX),
    Target("run_rsnn", rsnn.run_rsnn,
           lambda: {"inputs": X, "state": STATE, "topo": TOPO, "params": PARAMS},
           index=_INDEX),
    Target("rsnn_set_delays", rsnn.rsnn_set_delays,
           lambda: {"state": STATE, "topo": TOPO, "params": PARAMS, "delay_ms": D0[::-1].copy(),
                    "weight": W0}, index=_INDEX),
    Target("rsnn_init", rsnn.rsnn_init,
           lambda: {"topo": TOPO, "params": PARAMS, "weight": W0, "delay_ms": D0,
                    "v0_mv": -60.0, "theta0_mv": 0.0}, index=_INDEX),
    Target("rsnn_prepare", rsnn.rsnn_prepare,
           lambda: {"params": PARAMS, "n_exc": TOPO.n_exc, "n_inh": TOPO.n_inh}),
    Target("delay_weight_update", delay_weight_update, _update_pieces,
           fixed=("topo", "learning")),
]


# one perturbed call per example, and the valid call itself (tests/properties.py)
test_bad_input_gives_a_clear_error_or_a_finite_result, test_valid_input_runs = \
    target_tests(TARGETS)


@given(n_pos_state=st.integers(2, 4), n_pos_topo=st.integers(2, 4),
       n_pos_params=st.integers(2, 4), delay_state=st.integers(2, 4),
       delay_topo=st.integers(2, 4), width=st.integers(4, 6))
def test_mismatched_rsnn_pieces(n_pos_state, n_pos_topo, n_pos_params, delay_state,
                                delay_topo, width):
    """Pieces built for other sizes or ring lengths: a clear error, unless they all agree."""
    def state_for(n_pos, max_delay):
        topo, w, d = _network(n_pos, max_delay)
        return rsnn.rsnn_init(topo, rsnn.RSNNParams(max_delay_ms=float(max_delay)), w, d)

    topo = _network(n_pos_topo, delay_topo)[0]
    n = 2 * N_MAPS * n_pos_params
    kwargs = {"inputs": np.zeros((3, width), bool), "state": state_for(n_pos_state, delay_state),
              "params": rsnn.rsnn_prepare(PARAMS, n // 2, n // 2), "topo": topo}
    agree = (len({n_pos_state, n_pos_topo, n_pos_params}) == 1 and delay_state == delay_topo
             and width == N_IN)
    target = Target("mismatched_rsnn", _simulate_rsnn, lambda: kwargs)
    outcome = check_call(target, kwargs, set(kwargs), "pieces")
    assert outcome == ("accepted" if agree else "clear")
