"""Local learning rules as Numba kernels. Rules return ``dw`` and never change ``w``."""

__all__: list[str] = []
