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
# # Delay learning in an E/I network: Numba kernel vs its Brian2 twin
#
# The recurrent network of `bioplastic.neurons.rsnn` — 32 excitatory neurons in 4 maps of 8
# positions, 32 inhibitory partners giving lateral inhibition between the maps, 40 input spike
# trains, heterogeneous whole-step delays, pair STDP — and its Brian2 twin
# (`bioplastic.reference.rsnn`). Stimuli are presented one `run()` at a time, without rest;
# between runs the readout decides (the map with the most spikes), the reward is ±1 and the
# delays (RDL: `r · Σ G`) and weights (`Σ F`, homeostasis) are updated by the same library
# function on both sides, from each side's own spikes. Spikes still in flight when the delays
# change keep their old arrival step, on both sides. We look at
#
# 1. the spike rasters of both, side by side;
# 2. the delays and weights after every presentation, kernel vs twin.

# %%
import numpy as np

from bioplastic.neurons.rsnn_train import class_groups
from bioplastic.plot import figure, raster
from bioplastic.reference import rsnn as ref

# %% [markdown]
# ## The run
#
# 16 presentations of 40 ms (dt = 1 ms), random labels among the 4 maps. Input spikes of one
# source are at least 11 steps apart and excitatory neurons are refractory for 11 ms, more than
# the largest delay (10 steps), so no synapse ever has two events due in the same step (Brian2's
# numpy target would process such a pair in one vectorised pass; see the twin's docstring).

# %%
inputs = ref.random_case(3, n_presentations=16, steps_per=40, max_delay_steps=10, min_gap=11,
                         t_ref_exc_ms=11.0, rate=0.15)
topo, params, stdp, w0, d0, stimuli = ref.unpack(inputs)
kwargs = {"v0_mv": inputs["v0_mv"], "labels": inputs["labels"], "n_classes": 4,
          "groups": class_groups(4, 8), "learning": ref.PRESENTATION_LEARNING}
ours = ref.run_rsnn_kernel(stimuli, topo, params, stdp, w0, d0, **kwargs)
twin = ref.run_rsnn_twin(stimuli, topo, params, stdp, w0, d0, **kwargs)
print("spikes: kernel", ours.spike_steps.size, " twin", twin.spike_steps.size)
print("identical spikes:", np.array_equal(ours.spike_steps, twin.spike_steps)
      and np.array_equal(ours.spike_index, twin.spike_index))
print("decisions (kernel):", ours.state["decision"].astype(int))
print("decisions (twin):  ", twin.state["decision"].astype(int))
for key in ("delay_after", "w_after", "v_final"):
    print(f"max |Δ{key}| = {np.max(np.abs(ours.state[key] - twin.state[key])):.3g}")

# %% [markdown]
# ## Rasters
#
# Excitatory neurons 0–31 (blue, 4 maps of 8) and inhibitory partners 32–63 (red); grey lines
# mark the presentations (one `run()` each).

# %%
n_exc = topo.n_exc
fig, axes = figure(1, 2, figsize=(13, 4), sharey=True)
for ax, result, title in ((axes[0], ours, "bioplastic (Numba)"), (axes[1], twin, "Brian2 twin")):
    exc = result.spike_index < n_exc
    raster(ax, result.spike_steps[exc], result.spike_index[exc], color="C0", s=4)
    raster(ax, result.spike_steps[~exc], result.spike_index[~exc], color="C3", s=4)
    for k in range(len(stimuli) + 1):
        ax.axvline(40 * k, color="gray", lw=0.4)
    ax.set_title(title)
fig.tight_layout()

# %% [markdown]
# ## Delays and weights after every presentation
#
# Top: eight learned synapses' delays (kernel solid, twin dashed) and the largest kernel–twin
# difference over all synapses. Bottom: the same for weights. Delays are bit-identical; weights
# agree to float64 round-off (NumPy's vectorised `exp` in the twin vs libm's in the kernel).

# %%
learned = np.nonzero(topo.pathway < 2)[0]
picks = learned[np.linspace(0, learned.size - 1, 8).astype(int)]
fig, axes = figure(2, 2, figsize=(12, 6.5), sharex=True)
presentation = np.arange(1, len(stimuli) + 1)
for row, (key, label) in enumerate((("delay_after", "delay (ms)"), ("w_after", "w (mV)"))):
    axes[row, 0].plot(presentation, ours.state[key][:, picks], color="C0", lw=1)
    axes[row, 0].plot(presentation, twin.state[key][:, picks], color="C1", lw=1, ls="--")
    axes[row, 0].set_ylabel(label)
    diff = np.max(np.abs(ours.state[key] - twin.state[key]), axis=1)
    axes[row, 1].plot(presentation, diff, "o-", color="C2")
    axes[row, 1].axhline(np.finfo(float).eps, color="gray", ls=":", label="float64 eps")
    axes[row, 1].set_ylabel(f"max |Δ {label}|")
    axes[row, 1].legend(fontsize="small")
axes[1, 0].set_xlabel("presentation")
axes[1, 1].set_xlabel("presentation")
fig.tight_layout()

# %% [markdown]
# ## Delay distribution
#
# All learned delays before training and after the last presentation (kernel and twin
# histograms overlap exactly).

# %%
fig, ax = figure(1, 1, figsize=(7, 3.5))
ax.hist(d0[learned], bins=20, histtype="step", label="initial", color="gray")
ax.hist(ours.state["delay_after"][-1, learned], bins=20, histtype="step", label="kernel")
ax.hist(twin.state["delay_after"][-1, learned], bins=20, histtype="step", ls="--",
        label="Brian2 twin")
ax.set_xlabel("delay (ms)")
ax.legend()
fig.tight_layout()
