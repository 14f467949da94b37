"""Issue #22: property-based fuzzing (Hypothesis) of the config loader and the HTTP API. Whatever
comes in, the outcome is defined: a config or one ConfigError line; an HTTP answer below 500
with standard JSON. Bounded: a fixed number of examples each, no example database."""

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("aiohttp")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from secure_rigs import raw  # noqa: E402
from serve_rigs import running_service  # noqa: E402

from avgn_edge.errors import ConfigError  # noqa: E402

KEYS = ["api", "host", "port", "token", "max_streams", "allowed_hosts", "model", "bundle", "backend", "scheduler",
        "max_batch", "detect", "threshold", "stride", "filters", "max_not_heard", "offset_threshold", "jsonl", "path",
        "record", "retain", "days", "labels", "pre_capture", "mqtt", "topic_prefix", "cameras", "source", "enabled",
        "name", "front", "bell-checker", "mic", "loop", "decisions", "tls_ca_certs", "ros2", "x"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["synth://", "synth://?seed=2", "rtsp://a:b/c@h/x", "0",
                                                           "/etc/passwd", "127.0.0.1", "0.0.0.0", "{camera}"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6),
                                                                       inner, max_size=5)), max_leaves=25)
DOCS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)
BOUNDED = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@BOUNDED
@given(DOCS)
def test_fuzz_parse_config(data):
    from avgn_edge.serve.config import parse_config
    try:
        cfg = parse_config(data)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    json.dumps(cfg.model_dump(), allow_nan=False)          # what it accepted is finite


@pytest.mark.slow
@BOUNDED
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_load_config_bytes(tmp_path_factory, blob):
    from avgn_edge.serve.config import load_config
    path = tmp_path_factory.mktemp("fz") / "serve.yaml"
    path.write_bytes(blob)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc)


@pytest.fixture(scope="module")
def api():
    with running_service({"cameras": {"yard": {"source": "synth://?seed=3", "enabled": False}}}) as (svc, url):
        yield url


METHODS = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"])
PATHS = st.sampled_from(["/api/streams", "/api/streams/yard", "/api/streams/fz", "/api/events", "/metrics",
                         "/web/yard/state", "/web/cameras", "/health/ready"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#?%"), max_size=20).map(lambda s: "/" + s)
CTYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "application/json; charset=nope",
                          "text/plain", "application/merge-patch+json", ""])


@settings(max_examples=200, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(method=METHODS, path=PATHS, ctype=CTYPES,
       body=st.one_of(VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64),
                      st.fixed_dictionaries({"name": st.just("fz"), "source": st.just("synth://")},
                                            optional={"enabled": st.just(False), "detect": VALUES,
                                                      "record": VALUES, "jsonl": VALUES}).map(
                          lambda d: json.dumps(d).encode())))
@pytest.mark.slow
def test_fuzz_the_api(api, method, path, ctype, body):
    headers = {"Content-Type": ctype} if ctype else {}
    status, _, got = raw(api, method, path, body if method in ("POST", "PATCH", "PUT") else None, headers)
    assert status < 500, (status, got)
    if status >= 400 and path.startswith(("/api/", "/web/")):
        assert isinstance(got, dict) and "\n" not in got["error"], got
    if status == 201:
        assert raw(api, "DELETE", "/api/streams/fz")[0] == 200
