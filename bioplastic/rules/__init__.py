"""Local learning rules as Numba kernels. Rules return ``dw`` and never change ``w``."""

from .apply import DivergenceError, UpdateParams, apply_update, norm_dependent_rate, row_norms
from .hebbian import (
    KrotovParams,
    hebb_dw,
    instar_dw,
    krotov_current,
    krotov_hopfield_dw,
    oja_dw,
    sanger_dw,
)
from .inhibition import anti_hebbian_signs, hard_wta, k_wta, ranked_wta, soft_wta, triangle
from .softhebb import (
    SoftHebbParams,
    soft_hebb_bias_db,
    soft_hebb_bias_init,
    soft_hebb_conv_dw,
    soft_hebb_dw,
    soft_hebb_post,
)
from .stdp import (
    PostIndex,
    STDPKernelParams,
    STDPParams,
    bounded,
    depression_dw,
    event_decay,
    pair_window,
    post_index,
    potentiation_dw,
    run_synapse,
    stdp_prepare,
    trace_on_spike,
)
from .unfold import unfold_patches

__all__: list[str] = [
    # rate rules (SoftHebb, classic Hebbian), competition, updates
    "SoftHebbParams", "soft_hebb_dw", "soft_hebb_conv_dw", "soft_hebb_post", "soft_hebb_bias_db",
    "soft_hebb_bias_init", "hebb_dw", "instar_dw", "oja_dw", "sanger_dw", "KrotovParams",
    "krotov_hopfield_dw", "krotov_current", "soft_wta", "hard_wta", "k_wta", "ranked_wta",
    "anti_hebbian_signs", "triangle", "UpdateParams", "apply_update", "DivergenceError",
    "row_norms", "norm_dependent_rate", "unfold_patches",
    # spike-timing-dependent plasticity (trace STDP)
    "STDPParams", "STDPKernelParams", "stdp_prepare", "event_decay", "trace_on_spike",
    "depression_dw", "potentiation_dw", "bounded", "PostIndex", "post_index", "run_synapse",
    "pair_window",
]
