"""Detect and record streams (Frigate's ``inputs`` with roles): one local RTSP camera with a low-resolution
mount (/cam, detect) and a high-resolution one (/hi, record), both with sound. The event clip is read
by ffprobe and PyAV (not by the product's reader) and compared with what a separate PyAV client of
/hi received: the record stream's resolution and codec, its very slices (stream copy, no re-encode),
a sound track, and a start about ``pre_capture`` before the onset (at the keyframe before). A record
stream that cannot be opened: one line naming the camera, no secret, detection goes on, the clip is
encoded from the detect stream."""

import json
import logging
import subprocess
import threading
import time

import pytest

pytest.importorskip("aiohttp")
av = pytest.importorskip("av")
from camera_rigs import camera  # noqa: E402
from serve_rigs import free_port, http, running_service, wait_for  # noqa: E402

LABEL = "bell-checker"
QUIET = {"threshold": 1.0, "max_not_heard": 0.5}                   # nothing opens until the label is switched on
HI = (960, 540)


def slices(data: bytes, annexb: bool) -> list[bytes]:
    """The coded-slice NAL units (types 1 and 5) of an H.264 access unit, Annex B or length-prefixed."""
    nals = []
    if annexb:
        for part in data.split(b"\x00\x00\x01"):
            nals.append(part.rstrip(b"\x00"))
    else:
        i = 0
        while i + 4 <= len(data):
            n = int.from_bytes(data[i:i + 4], "big")
            nals.append(data[i + 4:i + 4 + n])
            i += 4 + n
    return [n for n in nals if n and n[0] & 0x1F in (1, 5)]


class Witness:
    """A separate PyAV client of the record stream: each access unit's slices and when it came (wall)."""

    def __init__(self, url: str):
        self.order, self.came = [], {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url):
        with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 5)) as c:
            for p in c.demux(c.streams.video[0]):
                if self._stop.is_set():
                    return
                key = b"".join(slices(bytes(p), annexb=True))
                if key and key not in self.came:
                    self.came[key] = time.time()
                    self.order.append(key)

    def stop(self):
        self._stop.set()
        self._thread.join(10)


def probe(path) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], capture_output=True,
                         text=True, check=True, timeout=30)
    return json.loads(out.stdout)["streams"]


def one_event(url: str, name: str) -> dict:
    """Switch the label on, wait for its event, switch it off: the event's record (wall times)."""
    http("PATCH", f"{url}/api/streams/{name}", {"detect": {"filters": {LABEL: {"threshold": 0.0}}}})
    ev = wait_for(lambda: next((e["after"] for e in http("GET", url + "/api/events")[1]["events"]
                                if e["type"] == "new" and e["after"]["label"] == LABEL), None), 30,
                  what="the event's start")
    time.sleep(3.0)
    http("PATCH", f"{url}/api/streams/{name}", {"detect": {"filters": {LABEL: {"threshold": 1.0}}}})
    return ev


@pytest.mark.slow
@pytest.mark.parametrize("codec,clip_audio", [("aac", "aac"), ("pcmu", "aac")])
def test_event_clip_is_the_record_stream_copied_with_its_sound_and_pre_roll(tmp_path, codec, clip_audio):
    pre = 2.0
    with camera("--audio", codec, "--size", "320x240", "--hi", f"{HI[0]}x{HI[1]}") as cam:
        hi = cam.url.replace("/cam", "/hi")
        witness = Witness(hi)
        cfg = {"detect": QUIET, "record": {"path": str(tmp_path / "clips"), "pre_capture": pre, "post_capture": 1.0,
                                           "snapshots": False},
               "cameras": {"door": {"inputs": [{"path": cam.url, "roles": ["detect"]},
                                               {"path": hi, "roles": ["record"]}]}}}
        try:
            with running_service(cfg) as (svc, url):
                st = svc.get_stream("door")
                wait_for(lambda: st.stats.decisions >= 2, 60, what="decisions")
                time.sleep(pre + 2.0)                      # the record ring holds more than the pre-roll
                ev = one_event(url, "door")
                clip = tmp_path / "clips" / "door" / LABEL / f"{ev['id']}.mp4"
                wait_for(clip.exists, 30, what="the clip")
                counters = st.sinks.workers[0].counters()
                shown = http("GET", f"{url}/api/streams/door")[1]["record_stream"]
                index = (tmp_path / "clips" / "door" / ".avgn-index.jsonl").read_text()
        finally:
            witness.stop()
    streams = {s["codec_type"]: s for s in probe(clip)}
    assert (streams["video"]["codec_name"], streams["video"]["width"], streams["video"]["height"]) == ("h264", *HI)
    assert streams["audio"]["codec_name"] == clip_audio
    assert counters["clips_copied"] == 1 and counters["clips_encoded"] == 0
    assert shown == {"source": hi, "state": "open", "reason": None, "connections": 1}
    assert f"{LABEL}/{ev['id']}.mp4" in index                         # retention knows it like any clip
    with av.open(str(clip)) as c:                                       # the camera's own slices, in order, none missing
        packets = [p for p in c.demux() if p.size]
        got = [b"".join(slices(bytes(p), annexb=False)) for p in packets if p.stream.type == "video"]
        audio_packets = sum(p.stream.type == "audio" for p in packets)
    where = [witness.order.index(g) if g in witness.came else None for g in got]
    assert None not in where, f"{where.count(None)} of {len(got)} clip frames are not the camera's (re-encoded?)"
    assert where == list(range(where[0], where[0] + len(got)))
    assert audio_packets > 0
    first = witness.came[got[0]]                                        # when the clip's first frame was sent
    lead = ev["start_time"] - first
    print(f"clip: {len(got)} frames copied, {audio_packets} sound packets, starts {lead:.2f} s before the onset")
    assert pre - 0.3 <= lead <= pre + 1.3, f"the clip starts {lead:.2f} s before the onset (pre-roll {pre} s)"


@pytest.mark.slow
def test_a_record_stream_that_cannot_be_opened_falls_back_to_encoded_clips(tmp_path, caplog):
    dead = f"rtsp://admin:hunter2secret@127.0.0.1:{free_port()}/hi"
    with camera("--audio", "pcmu", "--size", "320x240") as cam:
        cfg = {"detect": QUIET, "record": {"path": str(tmp_path / "clips"), "pre_capture": 1.0, "post_capture": 1.0,
                                           "snapshots": False},
               "cameras": {"door": {"inputs": [{"path": cam.url, "roles": ["detect"]},
                                               {"path": dead, "roles": ["record"]}]}}}
        with caplog.at_level(logging.INFO), running_service(cfg) as (svc, url):
            st = svc.get_stream("door")
            wait_for(lambda: st.stats.decisions >= 2, 60, what="decisions")
            ev = one_event(url, "door")
            clip = tmp_path / "clips" / "door" / LABEL / f"{ev['id']}.mp4"
            wait_for(clip.exists, 30, what="the clip")
            counters = st.sinks.workers[0].counters()
            decisions = st.stats.decisions
            shown = http("GET", f"{url}/api/streams/door")[1]["record_stream"]
    said = [r.getMessage() for r in caplog.records if "record stream" in r.getMessage()]
    assert len(said) == 1 and "camera door" in said[0] and "encoded from the detect stream" in said[0], said
    assert "hunter2secret" not in caplog.text and "admin" not in caplog.text
    assert decisions > 4 and counters["clips_encoded"] == 1 and counters["clips_copied"] == 0
    video = next(s for s in probe(clip) if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)
    assert shown["state"] == "failed" and shown["source"].startswith("rtsp://***@127.0.0.1") and shown["reason"]


def test_inputs_with_roles_in_the_config():
    from avgn_edge.errors import ConfigError
    from avgn_edge.serve.config import parse_config
    two = [{"path": "rtsp://u:p@cam/sub", "roles": ["detect"]}, {"path": "rtsp://u:p@cam/main", "roles": ["record"]}]
    cams = parse_config({"cameras": {"a": {"inputs": two}, "b": {"source": "rtsp://cam/one"},
                                     "c": {"inputs": [{"path": "rtsp://cam/x", "roles": ["detect", "record"]}]}}}).cameras
    assert (cams["a"].source, cams["a"].record_source) == ("rtsp://u:p@cam/sub", "rtsp://u:p@cam/main")
    assert cams["a"].display_source == "rtsp://***@cam/sub"
    assert (cams["b"].source, cams["b"].record_source) == ("rtsp://cam/one", None)
    assert cams["c"].record_source == "rtsp://cam/x"
    for cam, says in [({"inputs": two[1:]}, "cameras.a: inputs: none has the role detect"),
                      ({"inputs": two + two[1:]}, "2 inputs have the role record"),
                      ({"inputs": [{"path": "rtsp://cam/x", "roles": ["audio"]}]}, "cameras.a.inputs.0.roles.0"),
                      ({"inputs": [{"path": "ftp://cam/x", "roles": ["detect"]}]}, "cameras.a.inputs.0.path"),
                      ({"source": "rtsp://cam/y", "inputs": two}, "either source or inputs"), ({}, "source"),
                      ({"inputs": [two[0], {"path": "synth://", "roles": ["record"]}]}, "must be a network stream")]:
        with pytest.raises(ConfigError) as e:
            parse_config({"cameras": {"a": cam}})
        assert says in str(e.value) and len(str(e.value).splitlines()) == 1, str(e.value)
