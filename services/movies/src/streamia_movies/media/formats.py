"""Video container formats: recognised by their first bytes, served with their media type."""

from __future__ import annotations

VIDEO_CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
}

VIDEO_EXTENSIONS = frozenset(VIDEO_CONTENT_TYPES)

# How many leading bytes `sniff_video` wants to see; EBML DocType sits within the first few dozen.
SNIFF_BYTES = 4096


def sniff_video(head: bytes) -> str | None:
    """Name the container (`mp4`, `mov`, `mkv`, `webm`, `avi`) from a file's first bytes."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        # ISO base media: the major brand tells QuickTime from the MP4 family.
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 12 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"  # old QuickTime files start with an atom other than ftyp
    if head[:4] == b"\x1a\x45\xdf\xa3":
        # EBML header; the DocType element (0x4282) says "webm" or "matroska".
        doctype_at = head.find(b"\x42\x82", 4, 64)
        if doctype_at != -1 and b"webm" in head[doctype_at : doctype_at + 16]:
            return "webm"
        return "mkv"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def content_type_for(video_format: str | None) -> str:
    """The media type a video of this container is served with."""
    return VIDEO_CONTENT_TYPES.get(video_format or "", "application/octet-stream")
