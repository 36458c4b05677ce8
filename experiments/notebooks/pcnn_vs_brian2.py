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
# # PCNN: Numba kernel vs its Brian2 twin
#
# The discrete pulse-coupled neural network of `bioplastic.neurons.pcnn` (Convention A:
# `Y[n] = U[n] > E[n-1]`, then `E[n] = d_E E[n-1] + V_E Y[n]`) and its Brian2 twin
# (`bioplastic.reference.pcnn`: a `run_regularly` map plus `(summed)` coupling synapses) run on
# the same image. We look at
#
# 1. pulse maps over iterations, kernel vs twin;
# 2. threshold traces E of a few neurons, and their difference;
# 3. the classic segmentation behaviour: regions of similar intensity pulse together.

# %%
import numpy as np

from bioplastic.neurons import PCNNParams, run_pcnn
from bioplastic.plot import figure, raster_vs_twin, trace_vs_twin
from bioplastic.reference.pcnn import run_pcnn_kernel, run_pcnn_twin

# %% [markdown]
# ## An image of regions
#
# Four rectangles of different brightness on a dark background, with mild noise, 40×40.

# %%
rng = np.random.default_rng(4)
size, n_steps = 40, 60
image = np.full((size, size), 0.15)
image[4:18, 4:20] = 0.9
image[22:36, 6:16] = 0.6
image[8:30, 24:34] = 0.4
image[30:38, 20:38] = 0.75
image = np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1)

# A slowly decaying threshold from a high E[0] lets brighter regions cross it first; the large
# V_E keeps a pulsed pixel quiet for a long time afterwards.
kernel = np.array([[0.5, 1, 0.5], [1, 0, 1], [0.5, 1, 0.5]])
params = PCNNParams(decay_f=0.1, decay_l=float(np.exp(-1.0)), decay_e=0.85, v_f=0.002,
                    v_l=0.5, v_e=20.0, beta=0.2, e0=3.0, feeding_kernel=kernel / 6,
                    linking_kernel=kernel, coupling="intra")
drive = np.broadcast_to(image, (n_steps, 1, size, size)).copy()
record = np.array([5 * size + 5, 25 * size + 10, 15 * size + 28, 2 * size + 2])

ours = run_pcnn_kernel(params, drive, record_idx=record)
twin = run_pcnn_twin(params, drive, record_idx=record)
print("spikes: kernel", ours.spike_steps.size, " twin", twin.spike_steps.size)
print("identical pulses:", np.array_equal(ours.spike_steps, twin.spike_steps)
      and np.array_equal(ours.spike_index, twin.spike_index))
print("max |Δ| over F, L, U, E:",
      max(float(np.max(np.abs(ours.state[k] - twin.state[k]))) for k in ours.state))

# %% [markdown]
# ## Pulse maps over iterations
#
# Top row: the kernel's pulse map `Y[n]`; bottom row: the twin's (Brian step `n-1`).

# %%
def pulse_map(result, n):
    flat = np.zeros(size * size, dtype=bool)
    flat[result.spike_index[result.spike_steps == n - 1]] = True
    return flat.reshape(size, size)


shown = [8, 9, 10, 11, 13, 19, 30]
fig, axes = figure(2, len(shown) + 1, figsize=(2 * (len(shown) + 1), 4.2))
axes[0, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
axes[0, 0].set_title("stimulus")
axes[1, 0].axis("off")
for col, n in enumerate(shown, start=1):
    for row, (result, who) in enumerate(((ours, "kernel"), (twin, "Brian2"))):
        axes[row, col].imshow(pulse_map(result, n), cmap="binary")
        axes[row, col].set_title(f"{who}, n={n}", fontsize="small")
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# Raster of all pulses (dots: kernel, rings: twin).

# %%
fig, ax = figure(figsize=(9, 3.5))
raster_vs_twin(ax, (ours.spike_steps, ours.spike_index), (twin.spike_steps, twin.spike_index))
ax.set_xlabel("iteration n - 1 (Brian step)")

# %% [markdown]
# ## Threshold traces
#
# E of four neurons (one per bright region and one in the background): each pulse raises the
# threshold by `V_E`, which then decays until the internal activity crosses it again.

# %%
fig, axes = figure(2, 4, figsize=(14, 4.5), sharex=True)
for k in range(4):
    trace_vs_twin(axes[:, k], ours.state["E"][:, k], twin.state["E"][:, k], label="E")
    axes[0, k].set_title(f"neuron {record[k]} (S = {image.flat[record[k]]:.2f})")
    axes[1, k].set_xlabel("Brian step")
fig.tight_layout()

# %% [markdown]
# ## Segmentation behaviour
#
# The first-pulse iteration of each pixel (Zhan's "time matrix") groups pixels by region:
# brighter regions pulse first, and within a region the linking input pulls neighbours into the
# same iteration. With fast linking (here the `"leaky"` form, which keeps `d_L L[n-1]`) a
# region's pulse wave completes within one iteration. (pyclustering's form, which drops that
# term, falls into a 2-cycle of its Jacobi iteration on this image; the kernel then raises
# `RuntimeError` rather than return an arbitrary state.)

# %%
def first_pulse(spikes):
    fired = spikes.reshape(spikes.shape[0], -1)
    first = np.where(fired.any(0), fired.argmax(0) + 1, 0)
    return first.reshape(size, size)


plain = run_pcnn(image, params, n_steps=n_steps).spikes
fast = run_pcnn(image, params._replace(fast_linking="leaky"), n_steps=n_steps).spikes
regions = {"0.90": (slice(5, 17), slice(5, 19)), "0.60": (slice(23, 35), slice(7, 15)),
           "0.40": (slice(9, 29), slice(25, 33)), "0.75": (slice(31, 37), slice(21, 37)),
           "background": (slice(38, 40), slice(0, 40))}
for name, spikes in (("plain", plain), ("fast linking", fast)):
    first = first_pulse(spikes)
    summary = {r: np.unique(first[sl], return_counts=True) for r, sl in regions.items()}
    print(name, {r: dict(zip(v.tolist(), c.tolist(), strict=True))
                 for r, (v, c) in summary.items()})

fig, axes = figure(1, 3, figsize=(11, 3.6))
axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
axes[0].set_title("stimulus")
for ax, (name, spikes) in zip(axes[1:], (("plain", plain), ("fast linking", fast)), strict=True):
    im = ax.imshow(first_pulse(spikes), cmap="viridis")
    ax.set_title(f"first-pulse iteration ({name})")
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()

# %% [markdown]
# Each region's interior pulses first at one iteration (the counts above give, per region,
# first-pulse iteration → number of interior pixels): the PCNN segments the image by intensity,
# and the twin reproduces every pulse of the kernel.
