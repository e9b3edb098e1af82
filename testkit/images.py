"""Reading screenshots in tests: the mean luminance of a PNG (how much glare a screen gives)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt


def png_pixels(png: bytes) -> npt.NDArray[np.uint8]:
    """An 8-bit RGB or RGBA PNG (as browsers write screenshots) as an array (height, width, channels)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in (2, 6):
                raise ValueError("only 8-bit RGB/RGBA PNGs")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * channels + 1)
    out = np.zeros((height, width * channels), dtype=np.int32)
    for y in range(height):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(width * channels, dtype=np.int32)
        if f == 0:
            out[y] = line
        elif f == 2:
            out[y] = (line + prev) & 255
        elif f == 1:  # Sub: a running sum along each channel
            out[y] = (np.cumsum(line.reshape(width, channels), axis=0) & 255).reshape(-1)
        else:  # Sub, Average, Paeth depend on the pixel to the left: one pixel at a time
            row = np.zeros(width * channels, dtype=np.int32)
            for x in range(width * channels):
                left = row[x - channels] if x >= channels else 0
                up, up_left = prev[x], (prev[x - channels] if x >= channels else 0)
                if f == 1:
                    pred = left
                elif f == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                row[x] = (line[x] + pred) & 255
            out[y] = row
    return out.reshape(height, width, channels).astype(np.uint8)


def mean_luminance(png: bytes) -> float:
    """The mean Rec. 709 luma of a screenshot, 0 (black) to 255 (white)."""
    px = png_pixels(png)[..., :3].astype(np.float64)
    return float((px @ np.array([0.2126, 0.7152, 0.0722])).mean())
