"""Screenshots compared: how many pixels differ between two, and the two side by side with the difference marked.

``riskgym replay`` uses them on a desktop trace: the screenshot recorded at each step against the one the replay
took. Pillow reads and writes the PNGs.

>>> from PIL import Image
>>> a, b = Image.new("RGB", (10, 10), "white"), Image.new("RGB", (10, 10), "white")
>>> b.paste((255, 0, 0), (0, 0, 5, 2))
>>> pixel_difference(png_bytes(a), png_bytes(b))
0.1
"""

from __future__ import annotations

import io
from typing import Any

THRESHOLD = 24
"""A pixel differs when one of its channels differs by more than this (of 255): anti-aliasing and a blinking
cursor's edge stay below it."""


def _image(raw: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(raw)).convert("RGB")


def png_bytes(image: Any) -> bytes:
    """A Pillow image as PNG bytes."""
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _mask(a: Any, b: Any) -> Any:
    from PIL import ImageChops

    if a.size != b.size:
        b = b.resize(a.size)
    channels = ImageChops.difference(a, b).split()
    return ImageChops.lighter(ImageChops.lighter(channels[0], channels[1]), channels[2]).point(
        lambda v: 255 if v > THRESHOLD else 0)


def pixel_difference(a: bytes, b: bytes) -> float:
    """The fraction of pixels (0 to 1) that differ between two PNGs (the second scaled to the first's size)."""
    first = _image(a)
    mask = _mask(first, _image(b))
    return round(mask.histogram()[255] / (first.size[0] * first.size[1]), 6)


def side_by_side(recorded: bytes, replayed: bytes, label: str = "") -> bytes:
    """One PNG: the recorded screenshot, the replayed one, and the replayed one with differing pixels in red."""
    from PIL import Image, ImageDraw

    a = _image(recorded)
    b = _image(replayed).resize(a.size)
    width, height = a.size
    marked = Image.composite(Image.new("RGB", a.size, (255, 0, 0)), b.point(lambda v: v // 3 + 170), _mask(a, b))
    out = Image.new("RGB", (width * 3 + 20, height + 24), "white")
    for n, (image, title) in enumerate(((a, "recorded"), (b, "replayed"), (marked, "difference (red)"))):
        out.paste(image, (n * (width + 10), 24))
        ImageDraw.Draw(out).text((n * (width + 10) + 4, 6), f"{title} {label}".strip(), fill="black")
    return png_bytes(out)
