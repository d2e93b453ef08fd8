"""The 2-D sine-mixture regression target of the DiTAC paper's Fig. 1 (numpy; no framework).

y = sum_i w_i sin(A_i . x) for x in [-1, 1]^2, with
A = [[9,-7],[-9,11],[3,13],[9,9],[13,5],[3,19]] and w = [.4,.1,.15,.15,.1,.1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["A_MATRIX", "W_VECTOR", "sine_mixture", "grid"]

A_MATRIX = ((9, -7), (-9, 11), (3, 13), (9, 9), (13, 5), (3, 19))
W_VECTOR = (0.4, 0.1, 0.15, 0.15, 0.1, 0.1)


def sine_mixture(x: Any) -> np.ndarray:
    """Targets (N, 1) for points x (N, 2), in x's float dtype."""
    x = np.asarray(x)
    a = np.asarray(A_MATRIX, dtype=x.dtype)
    w = np.asarray(W_VECTOR, dtype=x.dtype)
    return (np.sin(x @ a.T) * w).sum(-1, keepdims=True)


def grid(n: int = 50, dtype: Any = np.float32) -> np.ndarray:
    """The n x n test grid on [-1, 1]^2 as (n*n, 2) points, rows y, columns x (as toy2d)."""
    line = np.linspace(-1, 1, n, dtype=dtype)
    gy, gx = np.meshgrid(line, line, indexing="ij")
    return np.stack([gx.reshape(-1), gy.reshape(-1)], 1)
