"""The pairing measurement (docs/benchmarks.md): a camera that flashes white and clicks at the same
instant every 2 s, over RTSP with its sound; each flash's click is found in the camera's sound on the
frames' clock. The error is a matter of timestamps, not of speed: the stream's own timestamps pair
them exactly for G.711 and Opus (well under a frame); AAC carries its encoder's priming delay."""

import pytest

from camera_rigs import camera, click_camera_file  # noqa: F401


@pytest.mark.slow
@pytest.mark.parametrize("codec,limit_ms", [("pcmu", 10.0), ("opus", 10.0), ("aac", 40.0)])
def test_flash_and_click_pair_within_the_target(click_camera_file, codec, limit_ms):  # noqa: F811
    from avgn_edge.bench.pairing import measure
    with camera(str(click_camera_file), "--audio", codec) as cam:
        r = measure(cam.url, seconds=12.0)
    assert r["flashes"] >= 4 and r["paired"] >= r["flashes"] - 1, r
    assert r["p95_ms"] <= limit_ms, r
