"""Cover images: PNG, JPEG or WebP by their bytes, re-encoded by Pillow before anyone sees them.

Nothing an admin uploads is served as it came: the picture is decoded (within a pixel limit
checked from the header, before decoding) and written again as a plain JPEG, so metadata,
trailing payloads and polyglot tricks do not survive.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from streamia_kit.errors import BadRequest

DEFAULT_MAX_COVER_BYTES = 10 * 1024 * 1024
MAX_COVER_PIXELS = 40_000_000
COVER_BOX = (1280, 1920)  # largest stored cover; a 2:3 poster at twice a card's size
COVER_QUALITY = 85
_FORMATS = ("PNG", "JPEG", "WEBP")


class UnsupportedImage(BadRequest):
    code = "unsupported_image_format"


class UnreadableImage(BadRequest):
    code = "unreadable_image"


def sniff_image(head: bytes) -> str | None:
    """`png`, `jpeg` or `webp` from a file's first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(filename: str, head: bytes) -> None:
    """The `cover` field's check: the bytes decide, never the name or the declared type."""
    if sniff_image(head) is None:
        raise UnsupportedImage(
            "Only PNG, JPEG and WebP images are allowed",
            details={"reason": "content is not a PNG, JPEG or WebP image"},
        )


def reencode_cover(source: Path, dest: Path) -> None:
    """Decode `source` and write it to `dest` as a JPEG no larger than COVER_BOX (blocking)."""
    try:
        with Image.open(source, formats=_FORMATS) as opened:
            pixels = opened.width * opened.height
            if pixels > MAX_COVER_PIXELS:
                raise UnreadableImage(
                    f"The cover is too large ({opened.width}×{opened.height} pixels)",
                    details={"maxPixels": MAX_COVER_PIXELS},
                )
            image = ImageOps.exif_transpose(opened)
            image.thumbnail(COVER_BOX)
            if image.mode != "RGB":
                # Transparent areas become white rather than black.
                flat = Image.new("RGB", image.size, "white")
                rgba = image.convert("RGBA")
                flat.paste(rgba, mask=rgba.getchannel("A"))
                image = flat
            image.save(dest, "JPEG", quality=COVER_QUALITY, optimize=True)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        dest.unlink(missing_ok=True)
        raise UnreadableImage(
            "The cover could not be read as an image",
            details={"reason": str(exc).replace(str(source), "the file")[:200]},
        ) from exc
