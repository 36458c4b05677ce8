"""Slow, obvious NumPy transcriptions of the kernels: the strongest reference in the tests."""

from __future__ import annotations

import numpy as np
