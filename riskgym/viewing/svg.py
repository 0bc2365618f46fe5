"""The frame of the report's square charts: a grid at 0, 0.5 and 1 on both axes, their ticks and names."""

from __future__ import annotations

from markupsafe import escape


def square_frame(size: int, pad: int, top: int, label: str, x_name: str, y_name: str, percent: bool) -> list[str]:
    """The opening ``<svg>`` and its frame, as parts to add the data to (then ``"</svg>"``)."""
    def tick(t: float) -> str:
        return f"{t:.0%}" if percent else f"{t:g}"

    parts = [f'<svg class="chart" viewBox="0 0 {size + pad + 20} {size + pad + top}" width="{size + pad + 20}" '
             f'height="{size + pad + top}" role="img" aria-label="{escape(label)}">']
    for t in (0, 0.5, 1):
        y, x = top + size - t * size, pad + t * size
        parts.append(f'<line x1="{pad}" x2="{pad + size}" y1="{y}" y2="{y}" class="grid"/>'
                     f'<line y1="{top}" y2="{top + size}" x1="{x}" x2="{x}" class="grid"/>'
                     f'<text x="{pad - 4}" y="{y + 4}" class="tick" text-anchor="end">{tick(t)}</text>'
                     f'<text x="{x}" y="{top + size + 14}" class="tick" text-anchor="middle">{tick(t)}</text>')
    parts.append(f'<text x="{pad + size / 2}" y="{top + size + 30}" class="axis" text-anchor="middle">'
                 f'{escape(x_name)}</text><text transform="translate(12 {top + size / 2}) rotate(-90)" class="axis" '
                 f'text-anchor="middle">{escape(y_name)}</text>')
    return parts
