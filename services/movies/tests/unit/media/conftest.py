import pytest


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory, write_clip):
    """One small clip per supported container (session-wide: encoding is not free)."""
    d = tmp_path_factory.mktemp("videos")
    return {
        "mp4": write_clip(d / "a.mp4"),
        "mov": write_clip(d / "a.mov", video_codec="mpeg4"),
        "mkv": write_clip(d / "a.mkv", video_codec="mpeg4", audio_codec="libmp3lame"),
        "webm": write_clip(d / "a.webm", video_codec="libvpx", audio_codec="libopus"),
        "avi": write_clip(d / "a.avi", video_codec="mpeg4", audio_codec="libmp3lame"),
        "silent_mp4": write_clip(d / "silent.mp4", audio_codec=None),
    }
