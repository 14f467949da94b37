"""A camera's streams by role, as Frigate's ``ffmpeg.inputs[].roles``: one for inference (``detect``,
often the camera's low-resolution substream) and optionally one for event clips (``record``, the
main stream, copied into the clips without re-encoding: sinks/remuxclips.py).

    cameras:
      front:
        inputs:
          - {path: "rtsp://user:pass@cam/sub", roles: [detect]}
          - {path: "rtsp://user:pass@cam/main", roles: [record]}

``source: URI`` stays the one-stream form (detect, and clips encoded from its frames).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import SourceError
from ..io.uri import parse_video_uri

ROLES = ("detect", "record")
NETWORK = ("rtsp", "rtmp", "http")          # what a record input may be (a live stream, copied as it comes)


class InputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    path: str
    roles: list[Literal["detect", "record"]] = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _uri(cls, v: str) -> str:
        try:
            parse_video_uri(v)
        except SourceError as exc:
            raise ValueError(str(exc)) from None
        return v


def by_role(inputs: list[InputConfig], source: str | None) -> tuple[str, str | None]:
    """(detect URI, record URI or None) of a camera; ValueError says what is wrong."""
    if not inputs:
        if source is None:
            raise ValueError("source (or inputs with roles [detect] and [record]) required")
        return source, None
    found = {}
    for role in ROLES:
        paths = [i.path for i in inputs if role in i.roles]
        if len(paths) > 1:
            raise ValueError(f"inputs: {len(paths)} inputs have the role {role} (one at most)")
        found[role] = paths[0] if paths else None
    if found["detect"] is None:
        raise ValueError("inputs: none has the role detect (the stream the model watches)")
    if found["record"] is not None and parse_video_uri(found["record"]).kind not in NETWORK:
        raise ValueError("inputs: the record input must be a network stream (rtsp://, rtmp://, http(s)://): "
                         "its packets are copied as they come")
    if source is not None and source != found["detect"]:
        raise ValueError("give either source or inputs, not both")
    return found["detect"], found["record"]
