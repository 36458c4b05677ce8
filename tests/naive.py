"""Slow, obvious NumPy transcriptions of the kernels: the strongest reference in the tests."""

from __future__ import annotations

import math

import numpy as np


# ---------------------------------------------------------------- rate rules (issue 3, rate half)
def naive_soft_wta(u, temperature):
    """softmax(u / τ) row by row, in plain Python floats."""
    import math

    y = np.zeros_like(u, dtype=np.float64)
    for b in range(u.shape[0]):
        top = max(u[b])
        e = [math.exp((v - top) / temperature) for v in u[b]]
        y[b] = [v / sum(e) for v in e]
    return y


def naive_signs(u, s):
    """Winner (first argmax) keeps +s, the others get -s."""
    y = -np.array(s, dtype=np.float64)
    for b in range(u.shape[0]):
        k = int(np.argmax(u[b]))
        y[b, k] = s[b, k]
    return y


def naive_ranked(u, k, delta):
    g = np.zeros_like(u, dtype=np.float64)
    for b in range(u.shape[0]):
        order = sorted(range(u.shape[1]), key=lambda j, row=u[b]: (-row[j], j))
        g[b, order[0]] = 1.0
        g[b, order[k - 1]] = -delta
    return g


def naive_decay_rule(x, y, decay, w):
    """Σ_b y_bk (x_bi − decay_bk w_ki), one sample and one synapse at a time."""
    dw = np.zeros_like(w, dtype=np.float64)
    for b in range(x.shape[0]):
        for k in range(w.shape[0]):
            for i in range(w.shape[1]):
                dw[k, i] += y[b, k] * (x[b, i] - decay[b, k] * w[k, i])
    return dw


def naive_soft_hebb_dw(x, u, w, temperature, anti_hebbian=False):
    s = naive_soft_wta(u, temperature)
    y = naive_signs(u, s) if anti_hebbian else s
    return naive_decay_rule(x, y, u, w)


def naive_sanger_dw(x, y, w):
    dw = np.zeros_like(w, dtype=np.float64)
    for b in range(x.shape[0]):
        for k in range(w.shape[0]):
            recon = sum(y[b, m] * w[m] for m in range(k + 1))
            dw[k] += y[b, k] * (x[b] - recon)
    return dw


def naive_krotov_dw(x, w, p, k, delta):
    current = x @ (np.sign(w) * np.abs(w) ** (p - 1)).T
    return naive_decay_rule(x, naive_ranked(current, k, delta), current, w)


def naive_conv_soft_hebb_dw(x, w, temperature, anti_hebbian, stride, padding, dilation, mode):
    """Conv SoftHebb by direct indexing of the padded input (no unfolding)."""
    pad = {"zeros": "constant", "reflect": "reflect"}[mode]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode=pad)
    n_out, _, kh, kw = w.shape
    ho = (xp.shape[2] - dilation * (kh - 1) - 1) // stride + 1
    wo = (xp.shape[3] - dilation * (kw - 1) - 1) // stride + 1
    dw = np.zeros_like(w, dtype=np.float64)
    for b in range(x.shape[0]):
        for p in range(ho):
            for q in range(wo):
                rows = p * stride + dilation * np.arange(kh)
                cols = q * stride + dilation * np.arange(kw)
                patch = xp[b][:, rows][:, :, cols]                    # (C, kh, kw)
                u = np.array([[np.sum(w[o] * patch) for o in range(n_out)]])
                s = naive_soft_wta(u, temperature)
                y = naive_signs(u, s) if anti_hebbian else s
                for o in range(n_out):
                    dw[o] += y[0, o] * (patch - u[0, o] * w[o])
    return dw


def naive_apply_update(w, dw, lr, max_normalise, power_lr, w_min, w_max):
    if max_normalise:
        dw = dw / (np.max(np.abs(dw)) + 1e-30)
    new = np.empty_like(w, dtype=np.float64)
    for k in range(w.shape[0]):
        rate = lr
        if power_lr:
            rate = lr * (abs(np.sqrt(np.sum(w[k] ** 2)) - 1.0) + 1e-10) ** power_lr
        new[k] = np.clip(w[k] + rate * dw[k], w_min, w_max)
    return new


# ------------------------------------------------------------------------------------- PCNN


def naive_correlate(y, kernel):
    """Zero-padded 2-D cross-correlation of maps ``y (C, H, W)`` with ``kernel (C, G, kh, kw)``
    (``G = 1``: each map with its own kernel; ``G = C``: ``out[c] = sum_g K[c, g] ⋆ y[g]``)."""
    n_maps, height, width = y.shape
    groups, kh, kw = kernel.shape[1:]
    padded = np.pad(np.asarray(y, dtype=np.float64), ((0, 0), (kh // 2,) * 2, (kw // 2,) * 2))
    out = np.zeros((n_maps, height, width))
    for c in range(n_maps):
        for g in range(groups):
            source = padded[c] if groups == 1 else padded[g]
            for a in range(kh):
                for b in range(kw):
                    out[c] += kernel[c, g, a, b] * source[a:a + height, b:b + width]
    return out


def naive_pcnn(drive, decay_f, decay_l, decay_u, decay_e, v_f, v_l, v_e, beta, e0, feed, link,
               fast_linking=False):
    """The PCNN map, Convention A, one line per equation of bioplastic.neurons.pcnn.

    ``drive (T, C, H, W)``; parameters are scalars or per-map ``(C,)``; ``feed``/``link`` are
    ``(C, G, kh, kw)`` kernels. Returns ``(Y (T, C, H, W) bool, dict of (T, C, H, W) traces)``.
    """
    n_steps, n_maps = drive.shape[:2]

    def per_map(v):
        return np.broadcast_to(np.asarray(v, dtype=np.float64), (n_maps,))[:, None, None]

    d_f, d_l, d_u, d_e = map(per_map, (decay_f, decay_l, decay_u, decay_e))
    vf, vl, ve, b = map(per_map, (v_f, v_l, v_e, beta))
    shape = drive.shape[1:]
    f, l, u = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    e = np.broadcast_to(np.asarray(e0, dtype=np.float64), shape).copy()
    y = np.zeros(shape, dtype=bool)
    out = {"f": [], "l": [], "u": [], "e": []}
    spikes = []
    for n in range(n_steps):
        f_new = d_f * f + vf * naive_correlate(y, feed) + drive[n]
        l_new = d_l * l + vl * naive_correlate(y, link)
        u_new = d_u * u + f_new * (1 + b * l_new)
        y_new = u_new > e
        if fast_linking:
            for _ in range(y.size + 1):
                l_fl = vl * naive_correlate(y_new, link)
                if fast_linking == "leaky":
                    l_fl = l_fl + d_l * l
                u_fl = d_u * u + f_new * (1 + b * l_fl)
                y_fl = u_fl > e
                l_new, u_new = l_fl, u_fl
                if np.array_equal(y_fl, y_new):
                    break
                y_new = y_fl
            else:
                raise RuntimeError("fast linking did not converge")
        e = d_e * e + ve * y_new
        f, l, u, y = f_new, l_new, u_new, y_new
        spikes.append(y.copy())
        for key, value in (("f", f), ("l", l), ("u", u), ("e", e)):
            out[key].append(value.copy())
    return np.array(spikes), {k: np.array(v) for k, v in out.items()}


def naive_zhan_convention_b(s, n_steps=40):
    """Zhan's 1-D demo exactly as kunzhan figure_2.m writes it (Convention B):
    ``K = conv(Y, [.707 1 .707], 'same'); F = e^-aF F + VF K + s; L = e^-aL L + VL K;
    U = F(1 + beta L); E = e^-aE E + VE Y; Y = U > E`` from F = L = U = Y = 0, E = 1.
    Returns spike iterations (1-based) per neuron and the final F, L, U, E arrays."""
    a_f, v_f, a_l, v_l, beta, a_e, v_e = 0.2, 0.1, 0.5, 0.2, 0.5, 0.2, 6.0
    s = np.asarray(s, dtype=np.float64)
    f, l, u, y = (np.zeros_like(s) for _ in range(4))
    e = np.ones_like(s)
    times = [[] for _ in s]
    for t in range(1, n_steps + 1):
        k = np.convolve(y, [0.707, 1.0, 0.707], mode="same")
        f = np.exp(-a_f) * f + v_f * k + s
        l = np.exp(-a_l) * l + v_l * k
        u = f * (1 + beta * l)
        e = np.exp(-a_e) * e + v_e * y
        y = (u > e).astype(np.float64)
        for i in np.nonzero(y)[0]:
            times[i].append(t)
    return times, f, l, u, e


def naive_scm_signature(s, kernel, n_steps=40):
    """SCM as kunzhan functions/SCM.m writes it (Convention B, sigmoid output read as U > E):
    ``U = 0.2 U + S (W ⋆ Y) + S; E = 0.9 E + 20 Y; Y = U > E`` from U = Y = 0, E = 1.
    Returns the time signature (number of pulses per iteration)."""
    s = np.asarray(s, dtype=np.float64)
    u, y, e = np.zeros_like(s), np.zeros_like(s), np.ones_like(s)
    signature = []
    for _ in range(n_steps):
        k = naive_correlate(y[None], np.asarray(kernel)[None, None])[0]
        u = 0.2 * u + s * k + s
        e = 0.9 * e + 20.0 * y
        y = (u > e).astype(np.float64)
        signature.append(int(y.sum()))
    return np.array(signature)


def naive_lif(drive, tau_m_ms, v_rest, v_reset, v_th, ref_steps, tau_theta_ms, theta_plus,
              dt_ms, pre, post, weight, delay_steps, v0):
    """LIF network, one Python statement per rule of the model docstring (Brian2 schedule).

    Returns (spikes (T, n) bool, v (T, n), theta (T, n)). Events are delivered one at a time in
    Brian2's queue order: oldest spike first, then presynaptic index, then postsynaptic index.
    """
    n_steps, n = drive.shape
    decay_m = np.exp((-dt_ms * 0.001) / (np.asarray(tau_m_ms) * 0.001)) * np.ones(n)
    decay_theta = np.exp((-dt_ms * 0.001) / (np.asarray(tau_theta_ms) * 0.001)) * np.ones(n)
    v, theta = np.array(v0, dtype=float), np.zeros(n)
    last_spike = np.full(n, -(2**40))
    spike_steps: list[list[int]] = []
    out_s = np.zeros((n_steps, n), bool)
    out_v, out_th = np.zeros((n_steps, n)), np.zeros((n_steps, n))
    synapses = sorted(zip(pre, delay_steps, post, weight, strict=True))
    for t in range(n_steps):
        not_ref = (t - last_spike) >= ref_steps
        for k in range(n):
            theta[k] = theta[k] * decay_theta[k]
            if not_ref[k]:
                e = decay_m[k]
                v[k] = ((v[k] * e + v_rest[k]) + ((-v_rest[k]) - drive[t, k]) * e) + drive[t, k]
        spikes = [k for k in range(n) if not_ref[k] and v[k] > v_th[k] + theta[k]]
        for k in spikes:
            last_spike[k], not_ref[k] = t, False
        spike_steps.append(spikes)
        for age in range(max(delay_steps, default=0), -1, -1):
            if t - age < 0:
                continue
            for i, d, j, w in synapses:
                if d == age and i in spike_steps[t - age] and not_ref[j]:
                    v[j] += w
        for k in spikes:
            v[k] = v_reset[k]
            theta[k] += theta_plus[k]
        out_s[t, spikes] = True
        out_v[t], out_th[t] = v, theta
    return out_s, out_v, out_th


def naive_wta(input_spikes, w0, delay_steps, p, s, v0, theta0):
    """Diehl & Cook network, dense matrices, one Python statement per rule (Brian2 schedule).

    ``p``/``s`` are WTAParams/STDPParams (read as plain numbers). Synapse (j, i) connects input
    i to excitatory neuron j. Events are processed one at a time: oldest input spike first,
    then input index, then excitatory index; then exc->inh, inh->exc, then postsynaptic
    events. Returns (exc spikes (T, n), inh spikes (T, n), v (T, n), theta (T, n), w final).
    """
    n_steps, n_in = input_spikes.shape
    n = w0.shape[0]
    dt = p.dt_ms * 0.001
    tau = {"e": p.tau_exc_ms * 0.001, "i": p.tau_inh_ms * 0.001}
    tau_ge, tau_gi, tau_th = p.tau_ge_ms * 0.001, p.tau_gi_ms * 0.001, p.tau_theta_ms * 0.001
    ref = {"e": round(p.t_ref_exc_ms / p.dt_ms), "i": round(p.t_ref_inh_ms / p.dt_ms)}
    rest = {"e": p.v_rest_exc_mv, "i": p.v_rest_inh_mv}
    e_ex = {"e": p.e_exc_exc_mv, "i": p.e_exc_inh_mv}
    e_in = {"e": p.e_inh_exc_mv, "i": p.e_inh_inh_mv}
    th = {"e": p.v_th_exc_mv - p.theta_offset_mv, "i": p.v_th_inh_mv}
    tpre, tp1, tp2 = s.tau_pre_ms * 0.001, s.tau_post_ms * 0.001, s.tau_post2_ms * 0.001
    v = {"e": np.array(v0, float), "i": np.full(n, p.v_rest_inh_mv)}
    ge = {"e": np.zeros(n), "i": np.zeros(n)}
    gi = {"e": np.zeros(n), "i": np.zeros(n)}
    last = {"e": np.full(n, -(2**40)), "i": np.full(n, -(2**40))}
    theta = np.array(theta0, float) * np.ones(n)
    w = np.array(w0, float)
    x_pre, x_p1, x_p2 = np.zeros((n, n_in)), np.zeros((n, n_in)), np.zeros((n, n_in))
    t_last = np.zeros((n, n_in))
    out = {key: np.zeros((n_steps, n), bool) for key in ("e", "i")}
    out_v, out_th = np.zeros((n_steps, n)), np.zeros((n_steps, n))

    def clip(x):
        return min(max(x, s.w_min), s.w_max)

    def decay(j, i, t):
        f = [math.exp((-(t - t_last[j, i])) / tc) for tc in (tp1, tp2, tpre)]
        x_p1[j, i] *= f[0]
        x_p2[j, i] *= f[1] if s.triplet else 1.0
        x_pre[j, i] *= f[2]
        t_last[j, i] = t

    def bump(x):
        return x + 1.0 if s.all_to_all else 1.0

    for step in range(n_steps):
        t = step * dt
        spikes = {}
        for g in ("e", "i"):
            spikes[g] = []
            for k in range(n):
                ge_old, gi_old = ge[g][k], gi[g][k]
                ge[g][k] = (((-dt) * ge_old) / tau_ge) + ge_old
                gi[g][k] = (((-dt) * gi_old) / tau_gi) + gi_old
                if g == "e":
                    theta[k] = (((-dt) * theta[k]) / tau_th) + theta[k]
                if step - last[g][k] >= ref[g]:
                    vk = v[g][k]
                    if p.conductance:
                        drive = (((ge_old * (e_ex[g] - vk)) + (gi_old * (e_in[g] - vk))) - vk)
                    else:
                        drive = (ge_old - gi_old) - vk
                    v[g][k] = ((dt * (drive + rest[g])) / tau[g]) + vk
                    if v[g][k] > th[g] + (theta[k] if g == "e" else 0.0):
                        spikes[g].append(k)
                        last[g][k] = step
        for age in range(int(delay_steps.max()), -1, -1):
            if step - age < 0:
                continue
            for i in np.nonzero(input_spikes[step - age])[0]:
                for j in range(n):
                    if delay_steps[j, i] != age:
                        continue
                    decay(j, i, t)
                    ge["e"][j] += w[j, i]
                    x_pre[j, i] = bump(x_pre[j, i])
                    dw = -(s.eta_pre * x_p1[j, i])
                    if s.mu_dep:
                        dw = dw * (w[j, i] ** s.mu_dep)
                    w[j, i] = clip(w[j, i] + dw)
        for k in spikes["e"]:
            ge["i"][k] += p.w_ei
        for k in spikes["i"]:
            for j in range(n):
                if j != k:
                    gi["e"][j] += p.w_ie
        for j in spikes["e"]:
            for i in range(n_in):
                decay(j, i, t)
                dw = s.eta_post * x_pre[j, i]
                if s.triplet:
                    dw = dw * x_p2[j, i]
                if s.mu_pot:
                    dw = dw * ((s.w_max - w[j, i]) ** s.mu_pot)
                w[j, i] = clip(w[j, i] + dw)
                x_p1[j, i] = bump(x_p1[j, i])
                if s.triplet:
                    x_p2[j, i] = bump(x_p2[j, i])
        for k in spikes["e"]:
            v["e"][k] = p.v_reset_exc_mv
            theta[k] += p.theta_plus_mv
        for k in spikes["i"]:
            v["i"][k] = p.v_reset_inh_mv
        out["e"][step, spikes["e"]] = True
        out["i"][step, spikes["i"]] = True
        out_v[step], out_th[step] = v["e"], theta
    return out["e"], out["i"], out_v, out_th, w


# ---------------------------------------------------------------- delay learning and the RSNN
def naive_g(lag, b_plus, b_minus, theta_plus, theta_minus):
    """Kernel G of the delay rule, written out."""
    if lag >= 0:
        return -b_minus * math.exp(-lag / theta_minus)
    return b_plus * math.exp(lag / theta_plus)


def naive_f(lag, a_plus, a_minus, tau_plus, tau_minus):
    if lag >= 0:
        return a_plus * math.exp(-lag / tau_plus)
    return -a_minus * math.exp(lag / tau_minus)


def naive_eligibility(pre_spikes, post_spikes, pre, post, d_ms, dt_ms, p):
    """Per synapse, Σ G and Σ F of ``lag = (t_post - t_pre) - d - eps`` over its pairs: with
    ``p.all_pairs`` every (post, pre) pair; otherwise (nearest, on arrival times) every post
    spike with the latest arrival at or before it (lag >= 0), then every arrival with the
    latest post spike before it (lag < 0)."""
    out_d, out_w = np.zeros(len(pre)), np.zeros(len(pre))
    for s in range(len(pre)):
        pre_t = [t for t in range(pre_spikes.shape[0]) if pre_spikes[t, pre[s]]]
        post_t = [t for t in range(post_spikes.shape[0]) if post_spikes[t, post[s]]]

        def lag(tp, tq, d=d_ms[s]):
            return (((tp - tq) * dt_ms) - d) - p.epsilon_ms

        if p.all_pairs:
            lags = [lag(tp, tq) for tp in post_t for tq in pre_t]
        else:
            lags = []
            for tp in post_t:
                lags += [lag(tp, tq) for tq in pre_t if lag(tp, tq) >= 0.0][-1:]
            for tq in pre_t:
                lags += [lag(tp, tq) for tp in post_t if lag(tp, tq) < 0.0][-1:]
        for x in lags:
            out_d[s] += naive_g(x, p.b_plus_ms, p.b_minus_ms, p.theta_plus_ms, p.theta_minus_ms)
            out_w[s] += naive_f(x, p.a_plus, p.a_minus, p.tau_plus_ms, p.tau_minus_ms)
    return out_d, out_w


def naive_rsnn(stimuli, delay_steps_per_stimulus, topo, kp, w0, v0):
    """The RSNN with an explicit Brian2-style spike queue per pathway (dict: arrival step ->
    synapse ids in push order) that survives delay changes; one delay array per stimulus.

    Returns (spikes (T_total, n) bool, final w, final v). Sequential per event, like Brian2's
    compiled targets.
    """
    lif, s = kp.lif, kp.stdp
    n = topo.n_exc + topo.n_inh
    v = np.array(v0, dtype=np.float64)
    theta = np.zeros(n)
    last_spike = np.full(n, -(2**40))
    w = np.array(w0, dtype=np.float64)
    x_pre, x_post = np.zeros(w.size), np.zeros(w.size)
    last_update = np.zeros(w.size, dtype=np.int64)
    queues = [dict() for _ in range(4)]
    out, step = [], 0
    for stim, delays in zip(stimuli, delay_steps_per_stimulus, strict=True):
        for t in range(stim.shape[0]):
            spikes = np.zeros(n, dtype=bool)
            not_ref = np.zeros(n, dtype=bool)
            for k in range(n):
                theta[k] = theta[k] * lif.decay_theta[k]
                not_ref[k] = (step - last_spike[k]) >= lif.ref_steps[k]
                if not_ref[k]:
                    e = lif.decay_m[k]
                    v[k] = ((v[k] * e + lif.v_rest[k]) + ((-lif.v_rest[k]) - 0.0) * e) + 0.0
                    if v[k] > lif.v_th[k] + theta[k]:
                        spikes[k], last_spike[k], not_ref[k] = True, step, False
            source = np.concatenate([stim[t], spikes])
            for q in range(4):                       # push, per pathway, source order
                for k in range(topo.pathway_ptr[q], topo.pathway_ptr[q + 1]):
                    if source[topo.pre[k]]:
                        queues[q].setdefault(step + delays[k], []).append(k)
            t_s = step * kp.dt_s
            for q in range(4):
                for k in queues[q].pop(step, []):
                    j, w_old = topo.post[k], w[k]
                    if kp.stdp_on[q]:
                        tl = last_update[k] * kp.dt_s
                        x_post[k] *= math.exp((-(t_s - tl)) / s.tau_post_s)
                        x_pre[k] = x_pre[k] * math.exp((-(t_s - tl)) / s.tau_pre_s)
                        x_pre[k] = x_pre[k] + 1.0 if s.all_to_all else 1.0
                        last_update[k] = step
                        w[k] = min(max(w_old + (-(s.eta_pre * x_post[k])), s.w_min), s.w_max)
                    if not_ref[j]:
                        v[j] += w_old
            for j in np.nonzero(spikes)[0]:
                for k in range(w.size):
                    if topo.post[k] != j or not kp.stdp_on[topo.pathway[k]]:
                        continue
                    tl = last_update[k] * kp.dt_s
                    x_pre[k] = x_pre[k] * math.exp((-(t_s - tl)) / s.tau_pre_s)
                    xp = x_post[k] * math.exp((-(t_s - tl)) / s.tau_post_s)
                    w[k] = min(max(w[k] + s.eta_post * x_pre[k], s.w_min), s.w_max)
                    x_post[k] = xp + 1.0 if s.all_to_all else 1.0
                    last_update[k] = step
            for k in range(n):
                if spikes[k]:
                    v[k] = lif.v_reset[k]
                    theta[k] += lif.theta_plus[k]
            out.append(spikes)
            step += 1
    return np.array(out), w, v
# ----------------------------------------------------------------------------- STC (issue 10)
def naive_stc(current, w_h, w_v, base="lif", v_th=1.0, bias_h=0.0, bias_v=0.0, plif_w=0.0,
              lmh=(0.0, 0.0, 0.0, 0.0)):
    """Dense STC layer, step by step in Python floats (sums over every j, zeros included).

    ``tanh`` is NumPy's (on the array of gate arguments), the function Brian2's numpy target
    calls; everything else is plain Python float arithmetic in the kernel's grouping.
    Returns spikes (T, n) bool, H, alpha, beta (T, n).
    """
    n_steps, n = current.shape
    sig = lambda z: 1.0 / (1.0 + np.exp(-np.float64(z)))  # noqa: E731 - NumPy exp, as prepare
    k_h, k_i = (float(sig(plif_w)), 1.0 - float(sig(plif_w))) if base == "plif" else (1.0, 1.0)
    c_du, c_su = float(sig(lmh[0])) - 0.5, float(sig(lmh[1])) - 0.5
    c_dp, c_sp = float(sig(lmh[2])) + 0.5, float(sig(lmh[3])) + 0.5
    h, d, s = [0.0] * n, [0.0] * n, [0.0] * n
    spikes = np.zeros((n_steps, n), dtype=bool)
    hs, alphas, betas = (np.zeros((n_steps, n)) for _ in range(3))
    for t in range(n_steps):
        arg_h, arg_v = np.zeros(n), np.zeros(n)
        for i in range(n):
            gh = gv = 0.0
            for j in range(n):
                gh += float(w_h[i, j]) * s[j]
                gv += float(w_v[i, j]) * s[j]
            arg_h[i], arg_v[i] = gh + bias_h, gv + bias_v
        alpha, beta = 1.0 + np.tanh(arg_h), 1.0 + np.tanh(arg_v)
        for i in range(n):
            a, b, x = float(alpha[i]), float(beta[i]), float(current[t, i])
            if base == "lmh":
                d[i] = (c_du * d[i] + c_su * h[i]) + b * x
                h[i] = c_dp * d[i] + c_sp * (a * h[i])
            else:
                h[i] = (k_h * a) * h[i] + (k_i * b) * x
            s[i] = 1.0 if h[i] >= v_th else 0.0
            h[i] = h[i] - v_th * s[i]
        spikes[t], hs[t], alphas[t], betas[t] = np.array(s) > 0.5, h, alpha, beta
    return spikes, hs, alphas, betas
