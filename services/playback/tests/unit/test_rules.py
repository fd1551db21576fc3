"""The pure rules: when a movie counts as finished, the trending score, the chart window."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from streamia_playback.charts.schemas import movie_out, parse_window
from streamia_playback.charts.service import ChartsService, Interest
from streamia_playback.progress.service import is_finished


@pytest.mark.parametrize(
    ("position", "duration", "finished"),
    [
        (0.0, 5400.0, False),
        (4859.0, 5400.0, False),
        (4860.0, 5400.0, True),  # 90 %
        (479.0, 600.0, False),
        (480.0, 600.0, True),  # the last two minutes of a short film
        (5400.0, 5400.0, True),
        (0.0, 24.0, False),  # the tail counts only past half-way
        (11.0, 24.0, False),
        (12.0, 24.0, True),
    ],
)
def test_a_movie_counts_as_finished_at_ninety_percent_or_in_its_last_two_minutes(
    position: float, duration: float, finished: bool
):
    assert is_finished(position, duration) is finished


def test_a_score_halves_every_half_life_and_scores_add_up():
    charts = ChartsService(None, None, half_life_hours=24.0, ttl=1.0, public_base="http://test")  # type: ignore[arg-type]
    now = datetime(2027, 3, 1, tzinfo=UTC)
    started = charts.log_score(Interest("m", "playback.started", now))
    day_old = charts.log_score(Interest("m", "playback.finished", now - timedelta(days=1)))
    assert math.isclose(charts.current(started, now), 1.0)
    assert math.isclose(charts.current(day_old, now), 1.0)  # weight 2, one half-life ago
    both = max(started, day_old) + math.log1p(math.exp(-abs(started - day_old)))
    assert math.isclose(charts.current(both, now), 2.0)
    assert math.isclose(charts.current(both, now + timedelta(days=2)), 0.5)


def test_scores_stay_finite_decades_after_the_epoch():
    charts = ChartsService(None, None, half_life_hours=1.0, ttl=1.0, public_base="http://test")  # type: ignore[arg-type]
    far = datetime(2080, 1, 1, tzinfo=UTC)
    score = charts.log_score(Interest("m", "rating.created", far))
    assert math.isfinite(score) and math.isclose(charts.current(score, far), 1.0)


def test_chart_windows_are_hours_or_days():
    assert parse_window("24h") == timedelta(hours=24)
    assert parse_window("7d") == timedelta(days=7)


def test_a_chart_item_has_absolute_media_urls_on_the_public_base():
    row = type("Row", (), {})()
    row.movie_id, row.title, row.duration, row.category = "m1", "Local", 24.0, "drama"
    row.poster, row.video_url = "/media/posters/a.jpg", "https://cdn.example/v.mp4"
    item = movie_out(row, "https://streamia.example")  # type: ignore[arg-type]
    assert item["poster"] == "https://streamia.example/media/posters/a.jpg"
    assert item["videoUrl"] == "https://cdn.example/v.mp4"  # absolute already: unchanged
