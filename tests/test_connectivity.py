"""Static topology, plastic weights and delays; changing delays between runs (Brian2 semantics)."""

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.neurons import (
    LIFParams,
    change_delays,
    connectivity,
    connectivity_from_arrays,
    lif_advance,
    lif_init,
    lif_prepare,
    with_delays,
    with_weights,
)
from bioplastic.reference.lif import random_network, run_lif_twin, unpack


def test_with_delays_keeps_topology_and_weights_and_rebuilds_the_delivery_index():
    rng = np.random.default_rng(0)
    conn = connectivity((rng.random((5, 4)) < 0.6) * 1.5, delay_ms=0.3, dt_ms=0.1)
    delays = rng.integers(0, 6, conn.n_synapses)
    new = with_delays(conn, delays)
    assert new.indptr is conn.indptr and new.post is conn.post and new.weight is conn.weight
    np.testing.assert_array_equal(new.delay_steps, delays)
    assert new.max_delay == delays.max()
    pre = conn.pre()
    for i in range(conn.n_pre):
        for d in range(new.max_delay + 1):
            block = new.delay_order[new.delay_ptr[i, d]:new.delay_ptr[i, d + 1]]
            assert np.all(pre[block] == i) and np.all(delays[block] == d)
            assert np.all(np.diff(block) > 0)            # CSR order within a block
    assert with_weights(conn, np.zeros(conn.n_synapses)).indptr is conn.indptr
    with pytest.raises(ValueError, match="delay_steps"):
        with_delays(conn, np.full(conn.n_synapses, -1))
    with pytest.raises(ValueError, match="delay_steps"):
        with_delays(conn, np.zeros(conn.n_synapses + 1, dtype=np.int64))


def _pair(delay_steps):
    """Neuron 0 -> neuron 1 with a 10 mV synapse; neuron 0 is driven to spike."""
    return connectivity_from_arrays(np.array([0]), np.array([1]), 10.0, 2, 2,
                                    delay_ms=delay_steps * 0.1, dt_ms=0.1)


def _run(conn, state, drive):
    kp = lif_prepare(LIFParams(t_ref_ms=0.0), 2)
    return bp.simulate(lif_advance, drive, state, kp, conn, record=("v",))


def test_a_spike_in_flight_keeps_its_old_delay():
    """Neuron 0 spikes at step 0 (delay 5 steps: due at step 5). After 2 steps the delay
    becomes 1: the queued event still arrives at step 5, as in Brian2's SpikeQueue; a spike
    emitted after the change takes 1 step."""
    drive = np.zeros((12, 2))
    drive[0, 0] = 1e4                      # one spike at step 0 (v jumps far above threshold)
    conn = _pair(5)
    state = lif_init(2, LIFParams(t_ref_ms=0.0), conn)
    first = _run(conn, state, drive[:2])
    assert first.spikes[0, 0]
    moved, conn1 = change_delays(first.state, conn, np.array([1]))
    assert moved.pending_due.tolist() == [5] and moved.pending_syn.tolist() == [0]
    second = _run(conn1, moved, drive[2:])
    v1 = np.concatenate([first["v"][:, 1], second["v"][:, 1]])
    jump = np.flatnonzero(np.diff(v1) > 5) + 1
    assert jump.tolist() == [5]
    # The same change with the old delivery (no pending events) would deliver nothing.
    assert first.state.history.any()


def test_change_to_the_same_delays_changes_nothing():
    inputs = random_network(4, n=40, n_steps=600, p=0.2, max_delay_steps=6)
    params, drive, conn = unpack(inputs)
    kp = lif_prepare(params, 40)
    state = lif_init(40, params, conn, v0_mv=inputs["v0_mv"])
    whole = bp.simulate(lif_advance, drive, state, kp, conn)
    first = bp.simulate(lif_advance, drive[:300], state, kp, conn)
    moved, same = change_delays(first.state, conn, conn.delay_steps.copy())
    second = bp.simulate(lif_advance, drive[300:], moved, kp, same)
    assert whole.spikes.sum() > 20             # the run exercises recurrent spikes
    np.testing.assert_array_equal(whole.spikes, np.concatenate([first.spikes, second.spikes]))
    np.testing.assert_array_equal(whole.state.v, second.state.v)


@pytest.mark.brian2
def test_delay_change_between_runs_equals_brian2():
    pytest.importorskip("brian2")
    inputs = random_network(7, n=60, n_steps=600, p=0.15, max_delay_steps=8)
    params, drive, conn = unpack(inputs)
    n = 60
    new_delays = np.random.default_rng(1).integers(0, 12, conn.n_synapses)
    kp = lif_prepare(params, n)
    state = lif_init(n, params, conn, v0_mv=inputs["v0_mv"])
    for at in range(300, 500):                 # the first change that catches spikes in flight
        first = bp.simulate(lif_advance, drive[:at], state, kp, conn, record=("v",))
        moved, conn2 = change_delays(first.state, conn, new_delays)
        if moved.pending_syn.size > 0:
            break
    assert moved.pending_syn.size > 0
    second = bp.simulate(lif_advance, drive[at:], moved, kp, conn2, record=("v",))
    twin = run_lif_twin(params, drive, conn, v0_mv=inputs["v0_mv"],
                        delay_change=(at, new_delays))
    ours = bp.Trace(np.concatenate([first.spikes, second.spikes]), {}, None).spike_pairs()
    np.testing.assert_array_equal(ours[0], twin.spike_steps)
    np.testing.assert_array_equal(ours[1], twin.spike_index)
    np.testing.assert_array_equal(np.concatenate([first["v"], second["v"]]), twin.state["v"])


def test_delays_set_by_with_delays_deliver_as_a_connectivity_built_with_them():
    """Delivery reads a block whose ``delay_order`` is the plain CSR range without the
    indirection (``block_is_csr``) and every other block through it. A network built with
    zero delays and then given delays by ``with_delays`` (most blocks reordered, some left in
    place) must deliver exactly like the same network built with those delays (every block in
    place): same synapses, same per-block post order, so the same sums bit for bit."""
    inputs = random_network(3, n=80, n_steps=400, p=0.1, max_delay_steps=0)
    params, drive, _ = unpack(inputs)
    delays = np.random.default_rng(5).integers(0, 4, inputs["pre"].size)
    def build(delay_steps):
        return connectivity_from_arrays(inputs["pre"], inputs["post"], inputs["weight"], 80, 80,
                                        delay_ms=delay_steps * 0.1, dt_ms=0.1)
    fresh = build(delays)
    reordered = build(np.zeros_like(delays))
    # the CSR order of `reordered` is (pre, post); its new delays in that order:
    by_pair = {(i, j): d for i, j, d in zip(inputs["pre"], inputs["post"], delays, strict=True)}
    reordered = with_delays(reordered, np.array([by_pair[i, j] for i, j in
                                                 zip(reordered.pre(), reordered.post,
                                                     strict=True)]))
    moved = reordered.delay_order != np.arange(reordered.n_synapses)
    assert moved.any() and not moved.all()        # both delivery paths are exercised
    assert np.array_equal(fresh.delay_order, np.arange(fresh.n_synapses))
    runs = []
    for conn in (fresh, reordered):
        state = lif_init(80, params, conn, v0_mv=inputs["v0_mv"])
        runs.append(bp.simulate(lif_advance, drive, state, lif_prepare(params, 80), conn,
                                record=("v",)))
    assert runs[0].spikes.sum() > 50    # 70 spikes for this seed, each to about 8 targets
    np.testing.assert_array_equal(runs[0].spikes, runs[1].spikes)
    np.testing.assert_array_equal(runs[0]["v"], runs[1]["v"])


def test_a_delay_block_out_of_csr_order_is_refused():
    """Within one (source, delay) block ``delay_order`` must increase (Brian2's order, and
    what lets delivery read a block whose two ends are in place as a plain range): a block
    with its ends in place and its middle swapped would otherwise be summed in another order
    than the one it lists."""
    from bioplastic.neurons._checks import check_connectivity

    conn = connectivity_from_arrays(np.zeros(4, np.int64), np.arange(4), 1.0, 1, 4)
    check_connectivity(conn, n_post=4)
    swapped = conn._replace(delay_order=np.array([0, 2, 1, 3], dtype=np.int64))
    with pytest.raises(ValueError, match="delay_order must list"):
        check_connectivity(swapped, n_post=4)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 130])
def test_next_spike_walks_the_true_entries_in_order(n):
    # next_spike skips zero words of eight flags; it must visit exactly np.flatnonzero's
    # indices, in order, for any length (tail entries past the last whole word included)
    # and for a non-contiguous row (no word view: entry by entry)
    from bioplastic.neurons.connectivity import next_spike, spike_words

    rng = np.random.default_rng(n)
    for density in (0.0, 0.05, 0.5, 1.0):
        flags = rng.random((3, 2 * n)) < density
        for row in (flags[1, :n].copy(), flags[1, ::2]):
            words = spike_words(row)
            assert words.size == (n // 8 if row.flags.c_contiguous else 0)
            seen, i = [], next_spike(row, words, 0)
            while i < n:
                seen.append(i)
                i = next_spike(row, words, i + 1)
            assert i == n and seen == np.flatnonzero(row).tolist()


def _delayed_network(seed=6, n=60, n_steps=300, max_delay=7):
    inputs = random_network(seed, n=n, n_steps=n_steps, p=0.15, max_delay_steps=max_delay)
    inputs["drive"] = inputs["drive"] + 6.0      # many spikes, many blocks in flight
    params, drive, conn = unpack(inputs)
    return params, drive, conn, lif_init(n, params, conn, v0_mv=inputs["v0_mv"])


def test_the_delivery_queue_after_a_run_is_the_one_the_ring_implies():
    """The kernels keep ``queue`` (blocks pushed when a spike fires) next to the history ring;
    at every step boundary it must equal the queue rebuilt from the ring, which is what the
    check compares and what a run continued from the final state relies on."""
    from bioplastic.neurons._checks import _queue_mismatch
    from bioplastic.neurons.connectivity import queue_capacity, queue_expected

    params, drive, conn, state = _delayed_network()
    kp = lif_prepare(params, state.v.size)
    whole = bp.simulate(lif_advance, drive, state, kp, conn)
    for at in (1, 37, 150):
        first = bp.simulate(lif_advance, drive[:at], state, kp, conn)
        queue = first.state.queue
        assert _queue_mismatch(queue, first.state.history, first.state.step, conn) == -1
        counts = queue_expected(first.state.history, first.state.step, conn,
                                queue_capacity(conn))[:, 0]
        np.testing.assert_array_equal(queue[:, 0], counts)
        second = bp.simulate(lif_advance, drive[at:], first.state, kp, conn)
        np.testing.assert_array_equal(np.concatenate([first.spikes, second.spikes]),
                                      whole.spikes)
    assert (first.state.queue[:, 0] > 0).sum() >= 2     # blocks were in flight at step 150


def test_a_delivery_queue_that_disagrees_with_the_ring_is_refused():
    params, drive, conn, state = _delayed_network()
    kp = lif_prepare(params, state.v.size)
    first = bp.simulate(lif_advance, drive[:150], state, kp, conn)
    slot = int(np.flatnonzero(first.state.queue[:, 0] > 0)[0])
    for column, value in ((0, 0), (1, first.state.queue[slot, 1] + 1)):
        queue = first.state.queue.copy()
        queue[slot, column] = value
        with pytest.raises(ValueError, match=f"state.queue does not match .*slot {slot}"):
            bp.simulate(lif_advance, drive[150:], first.state._replace(queue=queue), kp, conn)
    with pytest.raises(ValueError, match="state.queue must have shape"):
        bp.simulate(lif_advance, drive[150:], first.state._replace(
            queue=first.state.queue[:, :-2].copy()), kp, conn)


def test_change_delays_empties_the_delivery_queue():
    params, drive, conn, state = _delayed_network()
    first = bp.simulate(lif_advance, drive[:150], state, lif_prepare(params, state.v.size), conn)
    from bioplastic.neurons.connectivity import queue_capacity

    moved, conn2 = change_delays(first.state, conn, np.zeros(conn.n_synapses, dtype=np.int64))
    assert moved.queue.shape == (1, 1 + 2 * queue_capacity(conn2)) and not moved.queue.any()
    assert moved.pending_syn.size > 0      # what was in the queue is now pending
