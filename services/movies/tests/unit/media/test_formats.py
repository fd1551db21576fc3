import pytest

from streamia_movies.media.formats import content_type_for, sniff_video


@pytest.mark.parametrize("fmt", ["mp4", "mov", "mkv", "webm", "avi"])
def test_real_files_of_each_container_are_recognised_by_their_bytes(sample_videos, fmt):
    head = sample_videos[fmt].read_bytes()[:4096]

    assert sniff_video(head) == fmt


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello world, not a video at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"%PDF-1.7\n" + b"x" * 40,
    ],
)
def test_other_content_is_not_taken_for_video(head):
    assert sniff_video(head) is None


def test_unknown_formats_are_served_as_octet_stream():
    assert content_type_for(None) == "application/octet-stream"
