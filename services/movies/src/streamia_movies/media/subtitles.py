"""Subtitle files: detect the encoding, convert SRT to WebVTT, refuse malformed files."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import PurePath

from charset_normalizer import from_bytes

from streamia_kit.errors import BadRequest

SUBTITLE_EXTENSIONS = frozenset({".vtt", ".srt"})
MAX_SUBTITLE_BYTES = 5 * 1024 * 1024

# Spanish and English subtitles are what this platform gets; when a file is not UTF-8 these
# code pages are tried first, because on short texts a detector left alone happily picks a
# Central European page that turns "ñ" into "ń".
_WESTERN = ["cp1252", "latin_1", "iso8859_15"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# SRT: "00:01:02,345 --> 00:01:04,000" (hours may be one digit, "." is seen in the wild,
# and some tools append "X1:… Y2:…" position coordinates, which WebVTT has no use for).
_SRT_TIME = r"(\d{1,3}):([0-5]\d):([0-5]\d)[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}(?:\s+.*)?$")

# WebVTT: "[hh:]mm:ss.ttt --> [hh:]mm:ss.ttt [settings]".
_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"^{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+(.*))?$")
_VTT_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")

# SRT markup that WebVTT does not know: <font …> tags and ASS overrides such as {\an8}.
_FONT_TAG = re.compile(r"</?font\b[^>]*>", re.IGNORECASE)
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")
_VTT_TAG = re.compile(r"</?(?:i|b|u|c|v|lang|ruby|rt)(?:[.\s][^>]*)?>|<\d[\d:.]*>", re.IGNORECASE)
_VTT_ENTITY = re.compile(r"&(?:amp|lt|gt|nbsp|lrm|rlm|#\d+|#x[0-9a-fA-F]+);")


class InvalidSubtitle(BadRequest):
    """A subtitle file this service cannot turn into WebVTT."""

    code = "invalid_subtitle"


@dataclass(frozen=True)
class WebVtt:
    """A validated WebVTT document and where it came from."""

    text: str
    cues: int
    source_format: str  # "srt" | "vtt"
    encoding: str

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")


def check_subtitle_filename(filename: str | None) -> None:
    """Refuse anything not named .vtt or .srt."""
    suffix = PurePath(filename or "").suffix.lower()
    if suffix not in SUBTITLE_EXTENSIONS:
        raise InvalidSubtitle("Only .vtt and .srt subtitle files are allowed")


def decode_subtitle(raw: bytes) -> tuple[str, str]:
    """Return the text of a subtitle file and the encoding it was written in."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding.removesuffix("-sig")
            except UnicodeDecodeError:
                raise InvalidSubtitle("The subtitle file's text encoding is damaged") from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(raw, cp_isolation=_WESTERN).best() or from_bytes(raw).best()
    if best is None:
        raise InvalidSubtitle("Could not detect the subtitle file's text encoding")
    return str(best), best.encoding


def to_webvtt(raw: bytes, filename: str | None = None) -> WebVtt:
    """Decode, validate and convert a .srt or .vtt file to UTF-8 WebVTT."""
    check_subtitle_filename(filename)
    if not raw.strip():
        raise InvalidSubtitle("The subtitle file is empty")
    if len(raw) > MAX_SUBTITLE_BYTES:
        raise InvalidSubtitle("The subtitle file is too large")
    text, encoding = decode_subtitle(raw)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise InvalidSubtitle("The subtitle file is not text")
    # The content decides, not the name: a .srt that is really WebVTT is accepted as such.
    if text.lstrip(" \t\n").startswith("WEBVTT"):
        body, cues = _check_webvtt(text.lstrip(" \t\n"))
        return WebVtt(body, cues, "vtt", encoding)
    body, cues = _srt_to_webvtt(text)
    return WebVtt(body, cues, "srt", encoding)


def _ms(hours: str | None, minutes: str, seconds: str, fraction: str) -> int:
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(
        fraction.ljust(3, "0")
    )


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _blocks(text: str) -> list[list[str]]:
    """Split on blank lines (lines holding only whitespace count as blank)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _cue_text(line: str) -> str:
    """Keep the words; drop markup WebVTT lacks; escape what WebVTT would misread."""
    line = _ASS_OVERRIDE.sub("", _FONT_TAG.sub("", line))
    out: list[str] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char == "<":
            tag = _VTT_TAG.match(line, i)
            if tag:
                out.append(tag.group(0))
                i = tag.end()
                continue
            out.append("&lt;")
        elif char == "&":
            entity = _VTT_ENTITY.match(line, i)
            if entity:
                out.append(entity.group(0))
                i = entity.end()
                continue
            out.append("&amp;")
        elif char == ">":
            out.append("&gt;")  # keeps "-->" out of cue text
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _srt_to_webvtt(text: str) -> tuple[str, int]:
    cues: list[str] = []
    for number, block in enumerate(_blocks(text), start=1):
        lines = block
        # The cue number is dropped; only a line of digits right before the timing counts as one.
        if len(lines) > 1 and lines[0].strip().isdigit() and _SRT_TIMING.match(lines[1]):
            lines = lines[1:]
        timing = _SRT_TIMING.match(lines[0])
        if timing is None:
            raise InvalidSubtitle(
                "Malformed SRT file", details={"cue": number, "line": lines[0][:120]}
            )
        g = timing.groups()
        start, end = _ms(*g[0:4]), _ms(*g[4:8])
        if end < start:
            raise InvalidSubtitle(
                "Malformed SRT file: a cue ends before it starts", details={"cue": number}
            )
        payload = [_cue_text(line) for line in lines[1:]]
        cues.append("\n".join([f"{_vtt_time(start)} --> {_vtt_time(end)}", *payload]))
    if not cues:
        raise InvalidSubtitle("The subtitle file has no cues")
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n", len(cues)


def _check_webvtt(text: str) -> tuple[str, int]:
    blocks = _blocks(text)
    if not _VTT_HEADER.match(blocks[0][0]):
        raise InvalidSubtitle("Malformed WebVTT file: the first line must be WEBVTT")
    # Header lines after "WEBVTT" must not be cue timings (a cue needs a blank line first).
    if any("-->" in line for line in blocks[0][1:]):
        raise InvalidSubtitle("Malformed WebVTT file: a blank line must follow the header")
    cues = 0
    for number, block in enumerate(blocks[1:], start=1):
        first = block[0]
        if first.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in first:
            if cues and not first.startswith("NOTE"):
                raise InvalidSubtitle("Malformed WebVTT file: STYLE and REGION must precede cues")
            continue
        timing_at = 0 if "-->" in first else 1
        if timing_at >= len(block):
            raise InvalidSubtitle(
                "Malformed WebVTT file: a cue has no timing line", details={"block": number}
            )
        timing = _VTT_TIMING.match(block[timing_at].strip())
        if timing is None:
            raise InvalidSubtitle(
                "Malformed WebVTT file",
                details={"block": number, "line": block[timing_at][:120]},
            )
        g = timing.groups()
        if _ms(*g[4:8]) < _ms(*g[0:4]):
            raise InvalidSubtitle(
                "Malformed WebVTT file: a cue ends before it starts", details={"block": number}
            )
        if any("-->" in line for line in block[timing_at + 1 :]):
            raise InvalidSubtitle(
                "Malformed WebVTT file: cue text may not contain '-->'", details={"block": number}
            )
        # Cue text is markup a player renders: keep WebVTT's own tags, escape any other.
        block[timing_at + 1 :] = [_cue_text(line) for line in block[timing_at + 1 :]]
        cues += 1
    if cues == 0:
        raise InvalidSubtitle("The subtitle file has no cues")
    return "\n\n".join("\n".join(block) for block in blocks) + "\n", cues
