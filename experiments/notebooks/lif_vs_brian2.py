# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # LIF neurons: Numba kernel vs its Brian2 twin
#
# The leaky integrate-and-fire population of `bioplastic.neurons.lif` (exact integration of
# `dv/dt = (v_rest + I - v)/tau_m`, strict `v > v_th + theta` threshold, reset, absolute
# refractory period, adaptive threshold `theta`, recurrent synapses with delays) and its Brian2
# twin (`bioplastic.reference.lif`, the same equations as Brian2 strings) run on the same
# pre-drawn drive. We look at
#
# 1. one neuron without input: the subthreshold decay against the analytic solution;
# 2. the firing rate of a neuron as a function of a constant drive, kernel, twin and theory;
# 3. a recurrent network of 400 heterogeneous neurons: rasters, membrane and threshold traces
#    of both, and their difference.

# %%
import numpy as np

import bioplastic as bp
from bioplastic.plot import figure, raster_vs_twin, trace_vs_twin
from bioplastic.reference.lif import random_network, run_lif_kernel, run_lif_twin, unpack

# %% [markdown]
# ## Subthreshold decay
#
# Without input, `v` relaxes to `v_rest` as `v_rest + (v0 - v_rest) exp(-t/tau_m)`. The kernel
# integrates exactly (the decay factor `exp(-dt/tau_m)` is computed in NumPy as Brian2 computes
# it), so it meets the analytic curve to round-off.

# %%
params = bp.LIFParams(tau_m_ms=10.0, dt_ms=0.1)
steps = 500
trace = bp.run_lif(np.zeros((steps, 1)), params, v0_mv=-55.0, record=("v",))
t_ms = np.arange(1, steps + 1) * params.dt_ms
analytic = params.v_rest_mv + (-55.0 - params.v_rest_mv) * np.exp(-t_ms / params.tau_m_ms)
print("max |v - analytic| (mV):", float(np.max(np.abs(trace["v"][:, 0] - analytic))))

fig, axes = figure(2, 1, figsize=(8, 4), sharex=True)
trace_vs_twin(axes, trace["v"][:, 0], analytic, dt_ms=params.dt_ms)
axes[0].legend(["bioplastic", "analytic"], loc="upper right", fontsize="small")
axes[0].set_title("one neuron, no input: kernel vs analytic decay")

# %% [markdown]
# ## Firing rate against constant drive
#
# With a constant drive `I` above `v_th - v_rest` (15 mV here) a neuron fires periodically.
# Between spikes `v` climbs from `v_reset` towards `v_rest + I`; the interval is the refractory
# period plus the time to cross threshold, `tau_m ln(I / (I - 15 mV))`, rounded up to whole
# steps since spikes happen on the grid. Kernel and twin run 40 uncoupled neurons, one drive each.

# %%
n, steps = 40, 5000
drive_mv = np.linspace(14.0, 40.0, n)
params = bp.LIFParams(tau_m_ms=10.0, t_ref_ms=2.0, dt_ms=0.1)
drive = np.broadcast_to(drive_mv, (steps, n)).copy()
no_synapses = bp.connectivity(np.zeros((n, n)), dt_ms=params.dt_ms)
ours = run_lif_kernel(params, drive, no_synapses)
twin = run_lif_twin(params, drive, no_synapses)
print("identical spikes:", np.array_equal(ours.spike_steps, twin.spike_steps)
      and np.array_equal(ours.spike_index, twin.spike_index))

seconds = steps * params.dt_ms * 1e-3
rate_ours = np.bincount(ours.spike_index, minlength=n) / seconds
rate_twin = np.bincount(twin.spike_index, minlength=n) / seconds
above = drive_mv > 15.0
crossing = np.full(n, np.inf)
crossing[above] = params.tau_m_ms * np.log(drive_mv[above] / (drive_mv[above] - 15.0))
interval = params.t_ref_ms + np.ceil(crossing / params.dt_ms) * params.dt_ms
theory = np.where(above, 1e3 / interval, 0.0)

fig, ax = figure(figsize=(7, 4))
ax.plot(drive_mv, theory, color="0.6", lw=3, label="theory (whole steps)")
ax.plot(drive_mv, rate_ours, "o", color="C0", label="bioplastic")
ax.plot(drive_mv, rate_twin, "x", color="C1", label="Brian2 twin")
ax.set_xlabel("constant drive I (mV)")
ax.set_ylabel("rate (Hz)")
ax.set_title("f–I curve, t_ref = 2 ms, tau_m = 10 ms")
ax.legend()

# %% [markdown]
# (The first interval has no refractory period, which the theory ignores; over 0.5 s that
# shifts a rate by at most one spike, 2 Hz.)
#
# ## A recurrent network
#
# 400 neurons with heterogeneous membrane time constants, thresholds, refractory periods and
# adaptive thresholds; 2 % recurrent synapses with 0–3 step delays; noisy drive around the
# threshold. This is the validation workload of `bioplastic validate`, smaller.

# %%
inputs = random_network(11, n=400, n_steps=1500)
params, drive, conn = unpack(inputs)
kwargs = {"v0_mv": inputs["v0_mv"], "record_idx": inputs["record_idx"]}
ours = run_lif_kernel(params, drive, conn, **kwargs)
twin = run_lif_twin(params, drive, conn, **kwargs)
print("spikes: kernel", ours.spike_steps.size, " twin", twin.spike_steps.size)
print("identical spikes:", np.array_equal(ours.spike_steps, twin.spike_steps)
      and np.array_equal(ours.spike_index, twin.spike_index))
print("max |Δv|, |Δtheta| (mV):", float(np.max(np.abs(ours.state["v"] - twin.state["v"]))),
      float(np.max(np.abs(ours.state["theta"] - twin.state["theta"]))))

fig, ax = figure(figsize=(9, 4))
raster_vs_twin(ax, (ours.spike_steps, ours.spike_index), (twin.spike_steps, twin.spike_index),
               dt_ms=params.dt_ms)
ax.set_title("recurrent LIF network: bioplastic (dots) vs Brian2 twin (rings)")

# %% [markdown]
# Membrane potential and adaptive threshold of the busiest recorded neuron: the two traces lie
# on top of each other, and the lower panels show that their difference is exactly zero.

# %%
recorded = inputs["record_idx"]
busiest = int(np.argmax(np.bincount(ours.spike_index, minlength=400)[recorded]))
fig, axes = figure(2, 2, figsize=(12, 5), sharex=True)
trace_vs_twin(axes[:, 0], ours.state["v"][:, busiest], twin.state["v"][:, busiest],
              dt_ms=params.dt_ms)
trace_vs_twin(axes[:, 1], ours.state["theta"][:, busiest], twin.state["theta"][:, busiest],
              dt_ms=params.dt_ms, label="theta (mV)")
axes[0, 0].set_title(f"neuron {int(recorded[busiest])}: membrane potential")
axes[0, 1].set_title("adaptive threshold")
fig.tight_layout()

# %% [markdown]
# Parameters may also be given as Brian2 quantities; they are converted to the unit in the
# field's name (`tau_m_ms=10*ms` → 10.0), and a quantity of the wrong dimension is an error.

# %%
import brian2  # noqa: E402

trace_b2 = bp.run_lif(np.zeros((5, 1)), bp.LIFParams(tau_m_ms=10 * brian2.ms,
                                                     dt_ms=0.1 * brian2.ms), v0_mv=-55.0)
print("same v with Brian2 units:", np.array_equal(trace_b2["v"], trace["v"][:5, :1]))
