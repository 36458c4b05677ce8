"""The reference time loop of the torch equivalence tests: a Python loop of a step function
under autograd (what the fused whole-sequence paths must equal)."""


def step_loop(step, xs, state=None):
    """``s, state = step(x_t, state)`` for every ``x_t`` of ``xs``; returns ``(the spikes
    stacked (T, ...), the final state)``. ``step`` is a module's ``step`` or a functional step
    with its parameters bound."""
    import torch

    spikes = []
    for x_t in xs:
        s, state = step(x_t, state)
        spikes.append(s)
    return torch.stack(spikes), state


def force_path(monkeypatch, module, name, path):
    """Make ``module.<name>`` (the function that returns the Numba kernels' arguments, or
    ``None`` where they do not apply) take ``path``: ``"numba"`` (unchanged) or ``"torch_ops"``
    (always ``None``, the torch operations). Returns the list that records, call by call,
    whether the kernels ran."""
    real = getattr(module, name)
    calls = []

    def spy(*args):
        found = None if path == "torch_ops" else real(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(module, name, spy)
    return calls
