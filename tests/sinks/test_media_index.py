"""/web/media serves only what the clip sink wrote and indexed (issue #22): a foreign .mp4 or .jpg placed
under the output root, even with a name the service could have chosen, is 404; an indexed clip is served.
A real HTTP client against the web view's own server (127.0.0.1, a free port)."""

import numpy as np
import pytest

pytest.importorskip("aiohttp")


from avgn_edge.sinks.clips import ClipIndex, ClipSink  # noqa: E402
from avgn_edge.sinks.httphost import ApiServer  # noqa: E402
from avgn_edge.sinks.records import Media  # noqa: E402
from avgn_edge.sinks.web import WebView, web_app  # noqa: E402


def get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_only_indexed_media_is_served(tmp_path):
    media = Media(tmp_path)
    sink = ClipSink(media, camera="yard", fps=4.0, sample_rate=16000, retain_days=None)   # writes the index
    try:
        folder = tmp_path / "yard"
        (folder / "dog").mkdir()
        ours = folder / "dog" / "e1.mp4"
        ours.write_bytes(b"ours")
        sink.index.add(ours)
        (folder / "dog" / "e2.mp4").write_bytes(b"foreign")          # a name the service could choose, not indexed
        (folder / "dog" / "holiday.jpg").write_bytes(b"foreign")
        (folder / "dog" / "link.mp4").symlink_to(ours)               # indexed below, but a link
        sink.index.add(folder / "dog" / "link.mp4")
        view = WebView(lambda cam: media)
        view.frame("yard", np.zeros((8, 8, 3), np.uint8), None, 0.0)
        server = ApiServer(lambda: web_app(view), "127.0.0.1", 0)
        server.claim()
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}/web/media/yard/dog/"
            assert get(base + "e1.mp4") == (200, b"ours")
            assert get(base + "e2.mp4")[0] == 404
            assert get(base + "holiday.jpg")[0] == 404
            assert get(base + "link.mp4")[0] == 404
            assert get(f"http://127.0.0.1:{server.port}/web/media/yard/cat/e1.mp4")[0] == 404
        finally:
            server.stop()
    finally:
        sink.close()


def test_index_lists_only_its_own_names(tmp_path):
    idx = ClipIndex(tmp_path)
    (tmp_path / "dog").mkdir()
    idx.add(tmp_path / "dog" / "a.mp4")
    idx.add(tmp_path / "dog" / "a.mp4")
    assert idx.entries() == ["dog/a.mp4"]
    assert idx.lists("dog/a.mp4") and not idx.lists("dog/b.mp4") and not idx.lists("../dog/a.mp4")
