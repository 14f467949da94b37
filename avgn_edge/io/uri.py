"""Video source URIs, in the forms users of jetson-inference and Ultralytics expect.

    0, 1                      camera index (V4L2 on Linux)    0?width=640&height=480&fps=30
    /dev/video0               V4L2 device                     /dev/video0?fourcc=MJPG
    csi://0                   Jetson CSI camera (GStreamer)   csi://0?width=1280&height=720&fps=30&flip=2
    rtsp://host/path          network stream (PyAV: picture and sound)   the query stays part of the URL
    http(s)://host/cam.mjpg   network stream (PyAV: MJPEG, FLV, HLS, TS) idem
    rtmp://host/app/key       network stream (PyAV)                      idem
    file://clip.mp4, clip.mp4 a file (must exist)
    synth://                  the built-in real-time generator, quiet 90% of the time
                              synth://?seed=3&quiet=0.7&distractors=0.5&noise=0.25&events=bell-checker,hum-vstripes
                              (quiet: share of time with no event; or gap=MIN-MAX segments between events)
                              synth://?seed=3&replay=2   its first 2 s rendered once, then looped from
                              memory (benchmarks: the service without the generator's cost)

Credentials in a URI (``rtsp://user:pass@cam/...``, ``?password=...``) never leave it:
``str(VideoURI)``, source names, log lines and error messages show ``redact_uri(uri)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ..errors import SourceError

FORMS = ("0 (camera index)", "/dev/videoN", "csi://N", "rtsp://...", "http(s)://...", "rtmp://...",
         "file://path or a path", "synth://?seed=S&quiet=Q&distractors=D&noise=X&events=L1,L2 (or gap=MIN-MAX for quiet; replay=SECONDS loops)")
_HINT = "supported sources: " + ", ".join(FORMS)

_CAMERA_OPTS = {"width": int, "height": int, "fps": float, "fourcc": str}
_CSI_OPTS = {"width": int, "height": int, "fps": int, "flip": int}
_SYNTH_OPTS = {"seed": int, "quiet": float, "distractors": float, "noise": float, "events": str, "gap": str,
               "replay": float}


_SECRET = re.compile(r"pass|pwd|token|secret|key|auth|sig|user|login|cred", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """The URI with its user info and secret-looking query values replaced by ``***``."""
    uri = str(uri)
    if "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    head = rest[:min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))]
    at = head.rfind("@")                      # user info ends at the last '@' (a password may hold a '/')
    start = at + 1 if at >= 0 else 0
    cut = min((i for i in (rest.find("/", start), rest.find("?", start), rest.find("#", start)) if i >= 0),
              default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    if at >= 0:
        netloc = "***@" + netloc[start:]
    path, q, query = tail.partition("?")
    if q:
        parts = []
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            parts.append(f"{key}=***" if eq and _SECRET.search(key) else item)
        tail = path + "?" + "&".join(parts)
    return f"{scheme}://{netloc}{tail}"


@dataclass(frozen=True)
class VideoURI:
    kind: str                   # camera | v4l2 | csi | rtsp | http | rtmp | file | synth
    target: str                 # camera index, device path, sensor id, URL or file path ("" for synth)
    options: dict = field(default_factory=dict)
    raw: str = ""

    def __str__(self) -> str:            # what logs and APIs show: never credentials
        return redact_uri(self.raw or self.target)


def _options(kind: str, query: str, allowed: dict) -> dict:
    out = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise SourceError(f"unknown {kind} option {key!r}", hint=f"{kind} options: {', '.join(allowed)}")
        try:
            out[key] = allowed[key](value)
        except ValueError:
            raise SourceError(f"{kind} option {key} needs a number, got {value!r}") from None
    if kind == "synth":
        _check_synth(out)
    if "fourcc" in out and len(out["fourcc"]) != 4:
        raise SourceError(f"fourcc must have 4 characters, got {out['fourcc']!r}")
    return out


def _check_synth(opts: dict):
    from ..data.synth import LABELS
    for key in ("distractors", "noise"):
        if not 0.0 <= opts.get(key, 0.0) <= 1.0:
            raise SourceError(f"synth {key} must be in [0, 1], got {opts[key]}")
    if not 0.0 <= opts.get("quiet", 0.0) < 1.0:
        raise SourceError(f"synth quiet must be in [0, 1), got {opts['quiet']}",
                          hint="the share of time with no event, e.g. synth://?quiet=0.9")
    if "replay" in opts and not 0.0 < opts["replay"] <= 600.0:
        raise SourceError(f"synth replay must be in (0, 600] seconds, got {opts['replay']}",
                          hint="the length of the loop rendered once, e.g. synth://?replay=2")
    if "quiet" in opts and "gap" in opts:
        raise SourceError("synth: give quiet or gap, not both")
    if "events" in opts:
        labels = tuple(filter(None, (s.strip() for s in opts["events"].split(","))))
        bad = [s for s in labels if s not in LABELS]
        if bad or not labels:
            raise SourceError(f"unknown synth event label(s) {bad or opts['events']!r}",
                              hint="labels: " + ", ".join(LABELS))
        opts["events"] = labels
    if "gap" in opts:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", opts["gap"])
        if not m or int(m.group(2) or m.group(1)) < int(m.group(1)):
            raise SourceError(f"synth gap must be N or MIN-MAX segments, got {opts['gap']!r}")
        opts["gap"] = (int(m.group(1)), int(m.group(2) or m.group(1)))


def parse_video_uri(uri) -> VideoURI:
    """Parse a source URI (see the module docstring); SourceError for anything else."""
    if isinstance(uri, VideoURI):
        return uri
    if isinstance(uri, int) and not isinstance(uri, bool):
        uri = str(uri)
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise SourceError(f"bad video source {redact_uri(uri) if isinstance(uri, str) else uri!r}", hint=_HINT)
    raw = uri = uri.strip()
    head, _, query = uri.partition("?")
    if head.isdigit():
        return VideoURI("camera", str(int(head)), _options("camera", query, _CAMERA_OPTS), raw)
    if head.startswith("v4l2://"):
        head = head[len("v4l2://"):]
    if re.fullmatch(r"/dev/video\d+", head):
        return VideoURI("v4l2", head, _options("camera", query, _CAMERA_OPTS), raw)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme == "csi":
        sensor = head[len("csi://"):]
        if not sensor.isdigit():
            raise SourceError(f"csi source needs a sensor number, got {raw!r}", hint="e.g. csi://0")
        return VideoURI("csi", sensor, _options("csi", query, _CSI_OPTS), raw)
    if scheme in ("rtsp", "rtsps"):
        return VideoURI("rtsp", uri, {}, raw)
    if scheme in ("http", "https"):
        return VideoURI("http", uri, {}, raw)
    if scheme in ("rtmp", "rtmps"):
        return VideoURI("rtmp", uri, {}, raw)
    if scheme == "synth" or uri in ("synth", "synth:") or uri.startswith("synth:?"):
        return VideoURI("synth", "", _options("synth", query, _SYNTH_OPTS), raw)
    if scheme == "file":
        return _file(uri[len("file://"):], raw)
    if scheme:
        raise SourceError(f"unsupported video source {redact_uri(raw)!r} (scheme {scheme!r})", hint=_HINT)
    return _file(uri, raw)


def _file(path: str, raw: str) -> VideoURI:
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        what = "is not a file" if os.path.exists(path) else "does not exist"
        raise SourceError(f"video source {raw!r}: {path} {what}", hint=_HINT)
    return VideoURI("file", path, {}, raw)
