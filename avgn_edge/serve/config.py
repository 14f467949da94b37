"""``avgn-edge serve`` configuration: YAML in the spirit of Frigate's, validated strictly.

    api: {host: 127.0.0.1, port: 8080}        # token: ... (or AVGN_API_TOKEN); required off loopback (16+ chars)
                                              # allowed_hosts: [cam.lan], max_streams: 64
    model: {bundle: synth, backend: auto, precision: fp32}   # backend: triton + triton_url: grpc://HOST:8001
    scheduler: {max_batch: 64, max_wait_ms: 30, deadline_ms: 250}
    detect: {stride: 2, threshold: 0.5, filters: {bell-checker: {threshold: 0.7}},   # every camera's defaults
             max_not_heard: 1.0, offset_threshold: 0.25, min_duration: 0}         # (the event tracker's)
    jsonl: {path: "events/{camera}.jsonl", decisions: true}          # an output, off by default (append: false: afresh)
    mqtt: {host: broker.lan, port: 1883, topic_prefix: avgn, user: ha, password: ..., discovery: true}
    record: {path: clips, pre_capture: 5, post_capture: 5, retain: {days: 10, labels: {bell-checker: 30}}}
    ros2: {topic: /avgn/classification, connect: [tcp/robot:7447]}
    cameras:
      front: {source: "rtsp://user:pass@cam/stream"}
      yard:  {source: synth://?seed=3, detect: {threshold: 0.6}, jsonl: {enabled: false}}

The smallest config is ``cameras: {NAME: {source: URI}}`` plus ``api: {port: P}``. Global
sections named in ``CAMERA_SECTIONS`` are defaults that a camera overrides key by key under
the same name (Frigate's rule). A new output or feature adds one section model here and, if
cameras may override it, its name to ``CAMERA_SECTIONS``; ``mqtt``, ``record`` (clips and
snapshots) and ``ros2`` are off unless present, ``record`` overridable per camera.
Every mistake fails at start with one line naming the key: unknown keys, bad values, bad
source URIs, duplicate keys (YAML itself keeps the last one silently; we refuse). Numbers are
finite and bounded (no .inf/.nan); output paths (``record.path``, ``jsonl.path``) come only from
here, never from an API client (``camera_from_request`` refuses them).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..io.uri import redact_uri
from .inputs import InputConfig, by_role

TOKEN_ENV = "AVGN_API_TOKEN"
MIN_TOKEN = 16                                # characters of an API token off loopback
OPERATOR_KEYS = ("record", "jsonl")          # sections whose ``path`` only the config may set
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)   # finite numbers only


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: Optional[int] = Field(None, ge=0, le=65535)      # 0: any free port (tests)
    token: Optional[str] = None
    allowed_hosts: list[str] = []             # Host header names accepted besides the bound address (DNS rebinding)
    max_streams: int = Field(64, ge=1, le=4096)   # streams at most (config and POST); more -> 409

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class ModelSection(Section):
    bundle: str = "synth"
    backend: Literal["auto", "ort", "trt", "triton"] = "auto"
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    engines: Optional[str] = None
    triton_url: Optional[str] = None          # backend triton: http://HOST:8000 or grpc://HOST:8001
    triton_timeout: float = Field(10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _triton(self):
        if self.backend == "triton" and not self.triton_url:
            raise ValueError("triton_url: required with backend triton (http://HOST:8000 or grpc://HOST:8001)")
        return self

    def backend_options(self) -> dict:
        if self.backend in ("auto", "trt") and self.engines:
            return {"engines_dir": self.engines}
        if self.backend == "triton":
            return {"url": self.triton_url, "timeout": self.triton_timeout}
        return {}


class SchedulerConfig(Section):
    max_batch: int = Field(64, ge=1, le=4096)          # snippets (or decisions) per stage call
    max_wait_ms: float = Field(30.0, ge=0, le=10_000)    # how long a batch waits for the rest of a tick
    deadline_ms: float = Field(250.0, gt=0, le=600_000)   # a snippet older than this when its turn comes is dropped


class LabelFilter(Section):
    threshold: float = Field(ge=0.0, le=1.0)


class DetectConfig(Section):
    """When decisions make events: the settings of the event tracker (avgn_edge/events), in
    Frigate's words where it has them (``filters``, ``max_not_heard``)."""

    stride: int = Field(2, ge=1, le=1000)              # a decision every N snippets
    threshold: float = Field(0.5, ge=0.0, le=1.0)       # onset: a label's score that opens an event
    filters: dict[str, LabelFilter] = {}      # per label, Frigate's audio.filters form
    offset_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)   # heard while >= (default: half the onset)
    max_not_heard: float = Field(1.0, ge=0.0, le=86_400)           # seconds not heard before an event ends
    min_duration: float = Field(0.0, ge=0.0, le=86_400)            # seconds heard before an event is published

    def settings(self, tuned: dict | None = None):
        """EventSettings; what the config leaves unset comes from ``tuned`` (a bundle's
        ``event_defaults``, tuned on a validation stream), else from these defaults."""
        from ..events import EventSettings
        t, given = tuned or {}, self.model_fields_set
        pick = lambda field, key: getattr(self, field) if field in given or key not in t else t[key]  # noqa: E731
        return EventSettings(threshold=pick("threshold", "threshold"),
                             label_thresholds={**t.get("label_thresholds", {}),
                                               **{k: f.threshold for k, f in self.filters.items()}},
                             offset=pick("offset_threshold", "offset"), hold=pick("max_not_heard", "hold_s"),
                             min_duration=pick("min_duration", "min_duration_s"))


class JsonlConfig(Section):
    enabled: bool = True
    path: Optional[str] = None                # "{camera}" is replaced by the camera's name
    decisions: bool = True                    # also every decision, not only events
    append: bool = True                       # false: the file starts afresh at each start (live --events)

    def file_for(self, camera: str) -> Optional[Path]:
        return Path(self.path.replace("{camera}", camera)) if self.enabled and self.path else None


class MqttConfig(Section):
    """Frigate's ``mqtt`` names; see avgn_edge/sinks/mqtt.py for the topics."""
    host: str
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = "avgn"
    client_id: Optional[str] = None
    user: Optional[str] = None
    password: Optional[str] = None
    tls_ca_certs: Optional[str] = None
    tls_insecure: bool = False
    stats_interval: float = Field(60.0, ge=0, le=86_400)
    discovery: bool = False                   # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"
    outbox: int = Field(1000, ge=1, le=1_000_000)           # messages kept while the broker is away

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.strip("/") or any(c in v for c in "#+"):
            raise ValueError("a topic prefix without '#' or '+', e.g. avgn")
        return v.strip("/")

    @field_validator("tls_ca_certs")
    @classmethod
    def _ca(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not Path(v).is_file():
            raise ValueError(f"{v}: no such CA file")
        return v


class RetainConfig(Section):
    days: Optional[float] = Field(10.0, ge=0, le=36_500)        # None: keep forever
    labels: dict[str, Annotated[float, Field(ge=0, le=36_500)]] = {}   # a label's own days


class RecordConfig(Section):
    """Event clips (with sound) and snapshots: Frigate's ``record`` names."""
    enabled: bool = True
    path: str = "clips"                       # "{camera}" allowed; files: PATH/<camera>/<label>/<event id>.mp4|.jpg
    pre_capture: float = Field(5.0, ge=0, le=60)
    post_capture: float = Field(5.0, ge=0, le=300)
    max_seconds: float = Field(300.0, gt=0, le=3600)
    snapshots: bool = True
    retain: RetainConfig = RetainConfig()


class Ros2Config(Section):
    topic: str = "/avgn/classification"
    domain: Optional[int] = Field(None, ge=0, le=232)   # None: $ROS_DOMAIN_ID, else 0
    connect: list[str] = []                   # zenoh endpoints of the robot's router, e.g. tcp/robot:7447
    listen: list[str] = []
    node: str = "avgn_edge"
    rclpy: Literal["auto", "never", "always"] = "auto"
    scout: bool = True                        # zenoh's multicast scouting (finds a router on the LAN)


# sections a camera may override (global section = defaults); OPTIONAL ones are off unless given
CAMERA_SECTIONS = {"detect": DetectConfig, "jsonl": JsonlConfig}
OPTIONAL_CAMERA_SECTIONS = {"record": RecordConfig}


class AudioSelect(Section):
    """Which sound a camera's snippets carry: the camera's own (its stream's audio track; a file's
    track; synth's), a microphone on the box (``device``: sounddevice name or index), or none."""
    source: Literal["camera", "mic", "none"] = "camera"
    device: Optional[Union[int, str]] = None


class CameraConfig(Section):
    source: Optional[str] = None              # or inputs with roles (serve/inputs.py)
    inputs: list[InputConfig] = []
    enabled: bool = True
    mic: Optional[Union[int, str]] = None     # shorthand for audio: {source: mic, device: ...}
    audio: AudioSelect = AudioSelect()
    hwaccel: Literal["auto", "none", "jetson", "nvdec", "vaapi"] = "none"   # io/hwaccel.py
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    loop: bool = False                        # file sources: play again at the end
    detect: DetectConfig = DetectConfig()
    jsonl: JsonlConfig = JsonlConfig()
    record: Optional[RecordConfig] = None

    @field_validator("source")
    @classmethod
    def _uri(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else InputConfig._uri(v)

    @model_validator(mode="after")
    def _roles(self):
        detect, _ = by_role(self.inputs, self.source)
        object.__setattr__(self, "source", detect)      # source is the detect stream from here on
        return self

    @property
    def record_source(self) -> Optional[str]:
        """The stream event clips are copied from (inputs' role record), None: encoded from the detect stream's frames."""
        return by_role(self.inputs, self.source)[1]

    @property
    def display_source(self) -> str:
        return redact_uri(self.source)


class ServeConfig(Section):
    api: ApiConfig = ApiConfig()
    model: ModelSection = ModelSection()
    scheduler: SchedulerConfig = SchedulerConfig()
    detect: DetectConfig = DetectConfig()
    jsonl: JsonlConfig = JsonlConfig()
    mqtt: Optional[MqttConfig] = None
    record: Optional[RecordConfig] = None
    ros2: Optional[Ros2Config] = None
    cameras: dict[str, CameraConfig] = {}

    @model_validator(mode="after")
    def _resolve(self):
        for name, cam in self.cameras.items():
            if not NAME.fullmatch(name):
                raise ValueError(f"camera name {name!r}: use letters, digits, '-' and '_' (at most 64)")
            resolve_sections(self, cam)
        return self


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_sections(cfg: ServeConfig, cam: CameraConfig) -> CameraConfig:
    """Each overridable section of ``cam`` = the global one, updated with what the camera set."""
    for section, model in CAMERA_SECTIONS.items():
        mine = getattr(cam, section)
        if section in cam.model_fields_set:
            merged = _merge(getattr(cfg, section).model_dump(exclude_unset=True), mine.model_dump(exclude_unset=True))
        else:           # only what was set, so that model_fields_set tells a set key from a default
            merged = getattr(cfg, section).model_dump(exclude_unset=True)
        object.__setattr__(cam, section, model.model_validate(merged))
    for section, model in OPTIONAL_CAMERA_SECTIONS.items():
        glob, mine = getattr(cfg, section), getattr(cam, section)
        if glob is not None or mine is not None:
            merged = _merge(glob.model_dump() if glob is not None else {},
                            mine.model_dump(exclude_unset=True) if mine is not None else {})
            object.__setattr__(cam, section, model.model_validate(merged))
    return cam


# -------------------------------------------------------------------------- errors, one line each
def _allowed(model, loc) -> list[str] | None:
    """The keys allowed where an unknown key was found (walking the models along ``loc``)."""
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if field is None:                               # a dict key (camera or label name)
            continue
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), model)
    return sorted(model.model_fields) if hasattr(model, "model_fields") else None


def describe(exc: ValidationError, root=ServeConfig, prefix: tuple = ()) -> tuple[str, str | None]:
    """(one line naming the key, hint) for the first error."""
    errors = exc.errors()
    e = errors[0]
    loc = tuple(prefix) + tuple(e["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    hint = None
    if e["type"] == "extra_forbidden":
        allowed = _allowed(root, tuple(e["loc"]))
        hint = f"allowed here: {', '.join(allowed)}" if allowed else None
        return f"{key}: unknown key{more}", hint
    if e["type"] == "missing":
        return f"{key}: required{more}", None
    msg = e["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "source":
        from ..io.uri import FORMS
        hint = "sources: " + ", ".join(FORMS)
    return f"{key}: {msg}{more}", hint


def parse_config(data, source: str = "config") -> ServeConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (api:, cameras:, ...)")
    try:
        cfg = ServeConfig.model_validate(data)
    except ValidationError as exc:
        line, hint = describe(exc)
        raise ConfigError(f"{source}: {line}", hint=hint) from None
    if not cfg.api.token and os.environ.get(TOKEN_ENV):
        cfg.api.token = os.environ[TOKEN_ENV]
    if not cfg.api.loopback and not cfg.api.token:
        raise ConfigError(f"{source}: api.host {cfg.api.host} is not a loopback address, so an API token is required",
                          hint=f"set api.token or the {TOKEN_ENV} environment variable")
    t = cfg.api.token
    if not cfg.api.loopback and (len(t) < MIN_TOKEN or t.strip() != t or len(set(t)) < 8):
        raise ConfigError(f"{source}: api.token is too weak (at least {MIN_TOKEN} characters, no surrounding "
                              "spaces, 8 different ones)", hint="e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'")
    if len(cfg.cameras) > cfg.api.max_streams:
        raise ConfigError(f"{source}: cameras: {len(cfg.cameras)} cameras, more than api.max_streams "
                          f"({cfg.api.max_streams})", hint="raise api.max_streams")
    return cfg


def load_config(path: str | os.PathLike) -> ServeConfig:
    from .yamlfile import read_yaml
    return parse_config(read_yaml(path), str(path))


def camera_from_request(cfg: ServeConfig, body: dict) -> tuple[str, CameraConfig]:
    """POST /api/streams {"name", "source", ...camera keys}: (name, resolved camera); ConfigError names the key."""
    body = dict(body)
    name = body.pop("name", None)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError("name: required, letters, digits, '-' and '_' (at most 64)")
    for section in OPERATOR_KEYS:                   # where outputs go belongs to the operator, not to API clients
        if isinstance(body.get(section), dict) and "path" in body[section]:
            raise ConfigError(f"{section}.path: cannot be set through the API (output locations are the "
                              "operator's: the config file or the command line)",
                              hint=f"omit {section}.path: the stream uses the configured one")
    try:
        cam = CameraConfig.model_validate(body)
    except ValidationError as exc:
        line, hint = describe(exc, CameraConfig)
        if line.startswith("source: video source") and line.endswith(("does not exist", "is not a file")):
            line = "source: not a readable video file"     # the same words whether the path exists or not
        raise ConfigError(line, hint=hint) from None
    return name, resolve_sections(cfg, cam)


PATCHABLE = ("enabled", "detect")


def patched_camera(cam: CameraConfig, body: dict) -> CameraConfig:
    """PATCH /api/streams/NAME: ``enabled`` and ``detect`` keys change at run time."""
    fixed = sorted(set(body) - set(PATCHABLE))
    if fixed:
        raise ConfigError(f"{fixed[0]}: cannot be changed at run time (changeable: {', '.join(PATCHABLE)})",
                          hint="DELETE the stream and POST it again")
    data = cam.model_dump()
    data["detect"] = cam.detect.model_dump(exclude_unset=True)     # unset keys stay the model's tuned ones
    data = _merge(data, body)
    try:
        new = CameraConfig.model_validate(data)
    except ValidationError as exc:
        line, hint = describe(exc, CameraConfig)
        raise ConfigError(line, hint=hint) from None
    return new
