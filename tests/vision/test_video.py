"""Video frames with PyAV: scene changes, a fixed rate, the cap, and videos that are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from geri.errors import InputError
from geri.vision.video import SceneFilter, extract_frames, timestamp
from tests.vision.media import BLUE, GREEN, RED, make_video


@pytest.fixture
def three_scenes(tmp_path: Path) -> Path:
    # 1 s red, 1 s green, 2 s blue, at 10 frames per second
    return make_video(tmp_path / "scenes.mp4", [(RED, 1.0), (GREEN, 1.0), (BLUE, 2.0)])


def picks(source: Path | bytes, **options: float) -> list[float]:
    settings = {"frames_per_second": 0.0, "max_frames": 16, "scene_threshold": 0.12, **options}
    return [round(f.timestamp, 1) for f in extract_frames(source, **settings)]  # type: ignore[arg-type]


def test_scene_changes_pick_one_frame_per_scene(three_scenes: Path) -> None:
    assert picks(three_scenes) == [0.0, 1.0, 2.0]


def test_frames_carry_the_picture_at_their_time(three_scenes: Path) -> None:
    frames = list(
        extract_frames(three_scenes, frames_per_second=0, max_frames=16, scene_threshold=0.12)
    )
    colours = [f.image.convert("RGB").resize((1, 1)).getpixel((0, 0)) for f in frames]
    for got, want in zip(colours, (RED, GREEN, BLUE), strict=True):
        assert isinstance(got, tuple)
        assert all(abs(g - w) < 30 for g, w in zip(got, want, strict=True))


def test_a_fixed_rate(three_scenes: Path) -> None:
    assert picks(three_scenes, frames_per_second=1) == [0.0, 1.0, 2.0, 3.0]
    assert picks(three_scenes, frames_per_second=2.5) == [
        0.0,
        0.4,
        0.8,
        1.2,
        1.6,
        2.0,
        2.4,
        2.8,
        3.2,
        3.6,
    ]


def test_the_cap_spreads_fixed_rate_frames_over_the_whole_video(three_scenes: Path) -> None:
    assert picks(three_scenes, frames_per_second=10, max_frames=4) == [0.0, 1.0, 2.0, 3.0]


def test_the_cap_stops_scene_picking(three_scenes: Path) -> None:
    assert picks(three_scenes, max_frames=2) == [0.0, 1.0]


def test_bytes_work_like_a_file(three_scenes: Path) -> None:
    assert picks(three_scenes.read_bytes()) == [0.0, 1.0, 2.0]


def test_progress_reaches_the_end(three_scenes: Path) -> None:
    seen: list[tuple[float, float | None]] = []
    list(
        extract_frames(
            three_scenes,
            frames_per_second=0,
            max_frames=16,
            scene_threshold=0.12,
            progress=lambda done, total: seen.append((done, total)),
        )
    )
    assert seen[-1] == (pytest.approx(4.0, abs=0.15), pytest.approx(4.0, abs=0.15))  # type: ignore[comparison-overlap]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_what_is_not_a_video_gets_a_clear_error() -> None:
    with pytest.raises(InputError, match="neither an image nor a video geri can decode"):
        picks(b"certainly not a video " * 50)


def test_a_truncated_video_keeps_what_decoded_or_says_it_is_damaged(three_scenes: Path) -> None:
    data = three_scenes.read_bytes()
    with pytest.raises(InputError, match=r"neither an image nor a video|damaged|no frames"):
        picks(data[:200])


def test_scene_filter_on_frames_that_arrive_one_by_one() -> None:
    from PIL import Image

    scenes = SceneFilter(threshold=0.12, min_gap=0.5)
    red, blue = Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)
    assert [scenes.keep(i, t) for i, t in [(red, 0), (red, 1), (blue, 1.2), (red, 1.5)]] == [
        True,
        False,
        True,
        False,  # a new scene, but within min_gap of the last one
    ]


def test_timestamps() -> None:
    assert [timestamp(s) for s in (0, 9.9, 65, 3723)] == ["00:00", "00:09", "01:05", "1:02:03"]


def test_frames_larger_than_max_pixels_are_refused_before_decoding(three_scenes: Path) -> None:
    with pytest.raises(InputError, match=r"frames, over the limit of 100 pixels"):
        next(
            extract_frames(
                three_scenes, frames_per_second=1, max_frames=4, scene_threshold=0.1, max_pixels=100
            )
        )
