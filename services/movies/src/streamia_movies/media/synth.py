"""Demo clips made with PyAV: a moving picture with a title and a tone, H.264/AAC, faststart."""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from array import array
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

_SAMPLE_RATE = 48_000
_AUDIO_FRAME = 1024


@dataclass(frozen=True)
class ClipSpec:
    """What one demo clip looks and sounds like."""

    title: str
    colors: tuple[str, str]  # background gradient, top to bottom
    accent: str  # the moving disc and the progress bar
    tone: int  # Hz, a whole number so one second of samples loops seamlessly
    seconds: int = 24
    width: int = 640
    height: int = 360
    fps: int = 24


def _background(spec: ClipSpec) -> Image.Image:
    top, bottom = (Image.new("RGB", (1, 1), c).getpixel((0, 0)) for c in spec.colors)
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    column = Image.new("RGB", (1, spec.height))
    for y in range(spec.height):
        t = y / max(1, spec.height - 1)
        column.putpixel(
            (0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    image = column.resize((spec.width, spec.height))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(16, spec.height // 9))
    # The default font has no accented letters: "Acción" is drawn as "Accion".
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", spec.title) if not unicodedata.combining(c)
    )
    draw.text(
        (spec.width // 2, spec.height // 3),
        plain,
        font=font,
        fill="white",
        anchor="mm",
        stroke_width=2,
        stroke_fill="black",
    )
    return image


def _tone(spec: ClipSpec) -> bytes:
    """One second of a sine at `spec.tone` Hz, signed 16-bit mono, at a gentle level."""
    step = 2 * math.pi * spec.tone / _SAMPLE_RATE
    return array("h", (int(6000 * math.sin(i * step)) for i in range(_SAMPLE_RATE))).tobytes()


def make_clip(path: Path, spec: ClipSpec) -> None:
    """Write an MP4 with its index (moov) before the media data, so playback starts at once."""
    background = _background(spec)
    font = ImageFont.load_default(size=max(12, spec.height // 15))
    radius = spec.height // 10
    looped = _tone(spec) * 2  # a window of any offset fits without wrapping
    frames = spec.seconds * spec.fps
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        # A keyframe every two seconds keeps seeking in the player cheap.
        video.options = {"preset": "ultrafast", "crf": "28", "g": str(2 * spec.fps)}
        audio = out.add_stream("aac", rate=_SAMPLE_RATE, layout="mono")
        audio.bit_rate = 64_000
        samples_done = 0
        for index in range(frames):
            t = index / spec.fps
            picture = background.copy()
            draw = ImageDraw.Draw(picture)
            x = radius + (spec.width - 2 * radius) * (0.5 + 0.5 * math.sin(t * 1.3))
            y = spec.height * 0.62 + spec.height * 0.12 * math.cos(t * 2.1)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=spec.accent)
            draw.rectangle(
                (0, spec.height - 8, spec.width * (index + 1) // frames, spec.height),
                fill=spec.accent,
            )
            draw.text(
                (spec.width - 12, 12), f"{int(t) // 60:02}:{int(t) % 60:02}", font=font,
                fill="white", anchor="ra",
            )  # fmt: skip
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            out.mux(video.encode(frame))
            # Keep the audio level with the video: write samples up to this frame's end.
            wanted = (index + 1) * _SAMPLE_RATE // spec.fps
            while samples_done + _AUDIO_FRAME <= wanted:
                offset = samples_done % _SAMPLE_RATE
                chunk = looped[offset * 2 : (offset + _AUDIO_FRAME) * 2]
                sound = av.AudioFrame(format="s16", layout="mono", samples=_AUDIO_FRAME)
                sound.planes[0].update(chunk)
                sound.sample_rate = _SAMPLE_RATE
                sound.pts = samples_done
                sound.time_base = Fraction(1, _SAMPLE_RATE)
                out.mux(audio.encode(sound))
                samples_done += _AUDIO_FRAME
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


def main(argv: list[str]) -> int:
    """`PATH SPEC_JSON`: write one clip (run in a child process by the demo seeder)."""
    spec = json.loads(argv[1])
    make_clip(Path(argv[0]), ClipSpec(**{**spec, "colors": tuple(spec["colors"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
