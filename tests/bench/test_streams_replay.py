"""The many-streams benchmark runs the service on replayed synth streams (io/replay.py)."""

import pytest

from avgn_edge.bench import streams
from avgn_edge.io import replay


def test_stream_uris_and_prerender():
    assert streams.stream_uri(3) == "synth://?seed=3&replay=2"
    assert streams.stream_uri(3, "synth") == "synth://?seed=3"
    with pytest.raises(ValueError, match="unknown stream source"):
        streams.stream_uri(0, "camera")
    replay.clear_cache()
    streams.prerender(3, "replay")
    assert len(replay._cache) == 3 and replay.cached_bytes() > 0         # one loop per stream, kept
    streams.prerender(3, "synth")                       # live rendering has nothing to prepare
    replay.clear_cache()


def test_a_run_of_the_service_on_replayed_streams():
    r = streams.realtime_run("synth", 2, 64, 1.0, warmup=3.0)
    replay.clear_cache()
    assert r["source"] == "replay" and r["streams"] == 2 and r["min_snippets_per_s"] > 0
    assert r["latency_p95_ms"] is not None


def test_the_search_may_pass_the_default_stream_cap():
    """An idle 2-core machine runs 64 replayed streams in real time, so the search's next step is 128:
    the benchmark's service must admit them (Service._add raised api.max_streams' InputError at 65)."""
    from avgn_edge.bench.streams import service_for
    from avgn_edge.serve.config import parse_config
    cfg = service_for("synth", 130, 8, source="replay").cfg
    assert len(cfg.cameras) == 130 <= cfg.api.max_streams
    parse_config(cfg.model_dump(exclude_none=True))          # the config's own cap check agrees
