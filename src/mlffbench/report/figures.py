"""Shared figure plumbing: the Agg backend, model colours, and figure -> PNG bytes / base64."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # reports are written headless; never open a window
import matplotlib.pyplot as plt  # noqa: E402

DPI = 90


def model_colours(models) -> dict[str, tuple]:
    """A stable colour per model label (tab10 in first-seen order)."""
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(dict.fromkeys(models))}


def png_bytes(fig, dpi: int = DPI, tight: bool = True) -> bytes:
    """The figure as PNG; ``tight=False`` for a figure with fixed margins (saves one layout pass of every text)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    plt.close(fig)
    return buf.getvalue()


def png_base64(fig, dpi: int = DPI, tight: bool = True) -> str:
    return base64.b64encode(png_bytes(fig, dpi, tight)).decode("ascii")


def close(fig) -> None:
    plt.close(fig)


def fmt_value(v: float) -> str:
    """Short cell text: 3 significant figures without scientific notation for the usual ranges."""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.1 or a == 0:
        return f"{v:.2f}"
    return f"{v:.1e}"
