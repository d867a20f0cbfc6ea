"""Plain-text tables for the terminal."""

from __future__ import annotations


def format_table(header: list[str], units: list[str], rows: list[list], text_columns=(0, 1)) -> str:
    """Columns padded to width; ``text_columns`` (default: the first two, the names) left-aligned, numbers
    right-aligned."""
    cells = [header, units] + [[_text(x) for x in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(x.ljust(w) if i in text_columns else x.rjust(w)
                               for i, (x, w) in enumerate(zip(row, widths))).rstrip() for row in cells)


def _text(x) -> str:
    """A cell: numbers formatted by the caller arrive as text; a quantity a data set does not have ('nan', e.g.
    the stress of a molecule) prints as '-'."""
    text = str(x)
    return "-" if text in ("nan", "-nan", "+nan") else text


def interval_text(ci, factor: float = 1.0, digits: int = 2) -> str:
    """A confidence interval as "lo-hi" in report units; "-" where it is unknown (older runs, one test frame)."""
    if not ci or any(v is None or v != v for v in ci):
        return "-"
    return f"{factor * ci[0]:.{digits}f}-{factor * ci[1]:.{digits}f}"
