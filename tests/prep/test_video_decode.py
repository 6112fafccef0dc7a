"""PyAV decoding: probing, resampling to a target fps, and unusable videos."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.video import needs_av, write_video  # noqa: E402
from logo_tal.prep.video_decode import (  # noqa: E402
    DecodeStats,
    VideoDecodeError,
    iter_frames,
    num_resampled_frames,
    probe_video,
)

pytestmark = needs_av


def test_probe(video_dir):
    info = probe_video(video_dir / "cam_a.mp4")
    assert (info.fps, info.num_frames, info.duration) == (12.0, 96, 8.0)
    assert (info.width, info.height) == (64, 64)
    assert probe_video(video_dir / "cam_a.mp4", count_frames=True).num_frames == 96


@pytest.mark.parametrize(("fps", "expected"), [(12, 96), (6, 48), (5, 40), (24, 192), (7.5, 60)])
def test_resampled_frame_count(video_dir, fps, expected):
    stats = DecodeStats()
    frames = list(iter_frames(video_dir / "cam_b.mp4", fps, stats))
    assert len(frames) == stats.frames == expected == num_resampled_frames(96, 12.0, fps)
    assert (stats.source_frames, stats.source_fps, stats.duration) == (96, 12.0, 8.0)
    assert frames[0].shape == (64, 64, 3) and frames[0].dtype == np.uint8


def test_native_rate_is_identity_and_half_rate_keeps_every_other(video_dir):
    full = list(iter_frames(video_dir / "cam_c.mp4", 12))
    half = list(iter_frames(video_dir / "cam_c.mp4", 6))
    assert all(np.array_equal(h, full[2 * k]) for k, h in enumerate(half))
    # The square moves only inside the segments: a background frame has one colour.
    assert len(np.unique(full[int(3.0 * 12)].reshape(-1, 3), axis=0)) <= 3
    assert len(np.unique(full[int(1.5 * 12)].reshape(-1, 3), axis=0)) > 3


def test_unreadable_and_empty_videos(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(VideoDecodeError, match=r"junk.mp4: unreadable video"):
        probe_video(junk)
    with pytest.raises(VideoDecodeError, match=r"junk.mp4: unreadable video"):
        list(iter_frames(junk, 10))
    empty = write_video(tmp_path / "empty.avi", 0.0)
    with pytest.raises(VideoDecodeError, match=r"empty.avi: no decodable video frames"):
        probe_video(empty)
    with pytest.raises(VideoDecodeError, match=r"empty.avi: no decodable video frames"):
        list(iter_frames(empty, 10))
    with pytest.raises(VideoDecodeError, match="not found"):
        probe_video(tmp_path / "missing.mp4")
