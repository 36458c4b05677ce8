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
# # STC neurons: Numba kernel vs its Brian2 twin
#
# The dense autaptic STC layer of `bioplastic.neurons.stc` and its Brian2 twin
# (`bioplastic.reference.stc`: a `run_regularly` map plus `(summed)` modulator synapses) run
# on the same input current and the same random modulator weights. We compare
#
# 1. the spike rasters;
# 2. the membrane H, the temporal gate α (the autapse) and the spatial gate β of a few neurons,
#    and their differences (zero: the two agree bit for bit);
# 3. how α and β move with the layer's own previous spikes.

# %%
import numpy as np

from bioplastic.plot import figure, raster_vs_twin, trace_vs_twin
from bioplastic.reference.stc import random_case, run_stc_kernel, run_stc_twin, unpack

# %% [markdown]
# ## The same run on both sides
#
# 48 STC-LIF neurons, 300 steps, sparse random `A_h` (every autapse present) and `A_v`,
# random gate biases, a random positive current.

# %%
inputs = random_case(7, "lif", n=48, n_steps=300)
params, current, w_h, w_v = unpack(inputs)
record = np.array([0, 5, 17, 30])
ours = run_stc_kernel(params, current, w_h, w_v, record_idx=record)
twin = run_stc_twin(params, current, w_h, w_v, record_idx=record)
print("spikes: kernel", ours.spike_steps.size, " twin", twin.spike_steps.size)
print("identical spikes:", np.array_equal(ours.spike_steps, twin.spike_steps)
      and np.array_equal(ours.spike_index, twin.spike_index))
for key in ("H", "alpha", "beta"):
    print(f"max |Δ{key}|:", float(np.max(np.abs(ours.state[key] - twin.state[key]))))

# %% [markdown]
# ## Spike rasters
#
# Kernel spikes are dots, the twin's rings: identical trains show ringed dots only.

# %%
fig, ax = figure(figsize=(9, 3.5))
raster_vs_twin(ax, (ours.spike_steps, ours.spike_index), (twin.spike_steps, twin.spike_index))
ax.set_xlim(0, 120)
ax.set_title("STC-LIF layer: kernel vs Brian2 twin (first 120 steps)")

# %% [markdown]
# ## H, α and β of one neuron
#
# Each pair of panels: both traces overlaid, then |kernel − twin| on a log axis (empty when
# the traces are equal bit for bit).

# %%
fig, axes = figure(2, 3, figsize=(13, 4.5), sharex=True)
for k, key in enumerate(("H", "alpha", "beta")):
    trace_vs_twin(axes[:, k], ours.state[key][:100, 1], twin.state[key][:100, 1], label=key)
fig.tight_layout()

# %% [markdown]
# ## The gates follow the previous spikes
#
# α of a neuron is `1 + tanh(Σ_j A_h[i, j] S_j[t−1] + a_i)`: it takes a new value whenever the
# set of neurons that spiked at the previous step changes, and lies in (0, 2). Below, α of the
# recorded neurons against their own previous spike (vertical ticks).

# %%
spiked = np.zeros((current.shape[0], current.shape[1]), dtype=bool)
spiked[ours.spike_steps, ours.spike_index] = True
fig, axes = figure(len(record), 1, figsize=(9, 6), sharex=True)
for row, unit in enumerate(record):
    axes[row].plot(ours.state["alpha"][:80, row], label="α", color="C0")
    axes[row].plot(ours.state["beta"][:80, row], label="β", color="C3", lw=0.8)
    for t in np.flatnonzero(spiked[:79, unit]):
        axes[row].axvline(t + 1, color="0.8", lw=0.6, zorder=0)
    axes[row].set_ylabel(f"neuron {unit}")
axes[0].legend(loc="upper right", fontsize="small")
axes[-1].set_xlabel("step (grey: the neuron spiked the step before)")
print("alpha range:", float(ours.state["alpha"].min()), float(ours.state["alpha"].max()))
