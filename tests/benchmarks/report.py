"""Report helpers shared by the benchmarks: percentiles, aligned and Markdown tables, sizes."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence

from rbd_snapsched.pycompat import zip_equal


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (nan for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Iterator[str]:
    """A plain-text table, every column right-aligned under its header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    yield "  ".join(h.rjust(w) for h, w in zip_equal(headers, widths))
    yield "  ".join("-" * w for w in widths)
    for row in rows:
        yield "  ".join(c.rjust(w) for c, w in zip_equal(row, widths))


def markdown_table(rows: Sequence[Sequence[str]]) -> Iterator[str]:
    """A Markdown table; ``rows[0]`` is the header."""
    yield "| " + " | ".join(rows[0]) + " |"
    yield "|" + "---|" * len(rows[0])
    for row in rows[1:]:
        yield "| " + " | ".join(row) + " |"


def fmt_n(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def parse_sizes(text: str) -> list[int]:
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = 1
        if part.endswith("k"):
            part, scale = part[:-1], 1000
        elif part.endswith("m"):
            part, scale = part[:-1], 1_000_000
        try:
            value = int(float(part) * scale)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad size {part!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError("sizes must be >= 1")
        sizes.append(value)
    return sizes
