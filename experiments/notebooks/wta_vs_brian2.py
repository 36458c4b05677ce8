# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Spiking lateral inhibition with STDP: Numba kernel vs its Brian2 twin
#
# The Diehl & Cook (2015) network of `bioplastic.neurons.wta` — excitatory neurons with adaptive
# thresholds, one-to-one inhibitory partners that inhibit every other excitatory neuron, and
# nearest-spike triplet STDP on the input synapses — and its Brian2 twin
# (`bioplastic.reference.wta`) run on the same pre-drawn Poisson input. We look at
#
# 1. the spike rasters of both, side by side;
# 2. membrane and threshold traces of the winner and of a silenced neuron;
# 3. the difference between the kernel's and the twin's weights over time.

# %%
import numpy as np

from bioplastic.plot import figure, raster, trace_vs_twin
from bioplastic.reference import wta as ref

# %% [markdown]
# ## The run
#
# 20 excitatory + 20 inhibitory neurons, 784 inputs (a random 28×28 "image", a quarter of the
# pixels on, Diehl & Cook's rates `pixel/8 × intensity` with intensity 4), input delays of 0–2 ms,
# 300 ms at dt = 0.5 ms. Membrane potentials start between −70 and −55 mV.

# %%
inputs = ref.random_case(7, n=20, n_steps=600, max_delay_ms=2.0)
spikes_in, conn, n, params, stdp, kwargs = ref.unpack(inputs)
dt = params.dt_ms

# Find the winner first (the kernel is cheap), then record its input synapses on both sides.
first = ref.run_wta_kernel(spikes_in, conn, n, params, stdp, v0_mv=kwargs["v0_mv"])
counts = np.bincount(first.spike_index[first.spike_index < n], minlength=n)
winner, silent = int(np.argmax(counts)), int(np.argmin(counts))
into_winner = np.nonzero(conn.post == winner)[0]
active_inputs = spikes_in.sum(axis=0)[conn.pre()[into_winner]] > 0
record_syn = into_winner[active_inputs][:40]
record = {"v0_mv": kwargs["v0_mv"], "record_idx": np.array([winner, silent]),
          "record_syn": record_syn}

ours = ref.run_wta_kernel(spikes_in, conn, n, params, stdp, **record)
twin = ref.run_wta_twin(spikes_in, conn, n, params, stdp, **record)
print("excitatory spikes per neuron:", counts)
print("spikes: kernel", ours.spike_steps.size, " twin", twin.spike_steps.size)
print("identical spikes:", np.array_equal(ours.spike_steps, twin.spike_steps)
      and np.array_equal(ours.spike_index, twin.spike_index))
for key in ("v", "theta", "ge", "gi", "w", "w_final"):
    print(f"max |Δ{key}| = {np.max(np.abs(ours.state[key] - twin.state[key])):.3g}")

# %% [markdown]
# ## Rasters
#
# Excitatory neurons 0–19 (blue) and their inhibitory partners 20–39 (red). Every excitatory
# spike is followed within a step or two by its partner's, which silences everyone else: after the
# first volley a few neurons take nearly all spikes.

# %%
fig, axes = figure(1, 2, figsize=(12, 3.6), sharey=True)
for ax, result, title in ((axes[0], ours, "bioplastic (Numba)"), (axes[1], twin, "Brian2 twin")):
    exc = result.spike_index < n
    raster(ax, result.spike_steps[exc], result.spike_index[exc], dt_ms=dt, color="C0", s=12)
    raster(ax, result.spike_steps[~exc], result.spike_index[~exc], dt_ms=dt, color="C3", s=12)
    ax.axhline(n - 0.5, color="gray", lw=0.5)
    ax.set_title(title)
fig.tight_layout()

# %% [markdown]
# ## Membrane and threshold traces
#
# The winner (left) and the neuron with the fewest spikes (right): membrane potential, its
# difference to the twin, and the adaptive threshold `v_th - offset + theta`.

# %%
fig, axes = figure(3, 2, figsize=(12, 7.5), sharex=True)
for column, label in enumerate((f"winner (neuron {winner})", f"neuron {silent}")):
    trace_vs_twin(axes[:2, column], ours.state["v"][:, column], twin.state["v"][:, column],
                  dt_ms=dt, label="v (mV)")
    axes[0, column].set_title(label)
    threshold = params.v_th_exc_mv - params.theta_offset_mv
    time = np.arange(ours.state["theta"].shape[0]) * dt
    axes[2, column].plot(time, threshold + ours.state["theta"][:, column], color="C0",
                         label="bioplastic")
    axes[2, column].plot(time, threshold + twin.state["theta"][:, column], color="C1", ls="--",
                         label="Brian2 twin")
    axes[2, column].set_ylabel("threshold (mV)")
    axes[2, column].set_xlabel("time (ms)")
    axes[2, column].legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# ## Weights over time
#
# Left: the winner's weights from 40 active inputs (kernel solid, twin dashed): each input spike
# depresses a little (`-eta_pre * post1`), each winner spike potentiates the recently active
# inputs (`eta_post * pre * post2_before`). Right: the largest kernel–twin weight difference at
# every step. NumPy's vectorised `exp` (used by the twin's numpy target) and libm's `exp` (used
# by Numba) may differ in the last bit, so differences, if any, stay at float64 round-off.

# %%
fig, axes = figure(1, 2, figsize=(12, 3.6))
time = np.arange(ours.state["w"].shape[0]) * dt
axes[0].plot(time, ours.state["w"], color="C0", lw=0.8)
axes[0].plot(time, twin.state["w"], color="C1", lw=0.6, ls="--")
axes[0].set_xlabel("time (ms)")
axes[0].set_ylabel("w (input → winner)")
diff = np.max(np.abs(ours.state["w"] - twin.state["w"]), axis=1)
if np.any(diff > 0):
    axes[1].semilogy(time, np.where(diff > 0, diff, np.nan), color="C2")
else:
    axes[1].plot(time, diff, color="C2")
    axes[1].text(0.5, 0.5, "identical at every step", transform=axes[1].transAxes,
                 ha="center")
axes[1].axhline(np.finfo(float).eps, color="gray", ls=":", label="float64 eps")
axes[1].set_xlabel("time (ms)")
axes[1].set_ylabel("max |Δw|")
axes[1].legend(fontsize="small")
fig.tight_layout()
