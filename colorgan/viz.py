"""Pictures a run writes: the gray | truth | colorized sample grid."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from colorgan.atomic import atomic_save  # noqa: E402


def save_image_grid(path: str | os.PathLike, columns: dict[str, np.ndarray], title: str = "") -> None:
    """One row per image, one column per entry of `columns` (name -> float RGB [N, H, W, 3] in [0, 1])."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    fig, axes = plt.subplots(n, len(names), figsize=(1.6 * len(names), 1.6 * n + 0.4), squeeze=False)
    for col, name in enumerate(names):
        for row in range(n):
            ax = axes[row][col]
            ax.imshow(np.clip(columns[name][row], 0.0, 1.0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
