"""Hardware decode per camera: ``hwaccel: auto | none | jetson | nvdec | vaapi``.

* ``none``: FFmpeg's software decoders (the only path measured on the CPU-only build machine);
* ``nvdec``: an NVIDIA dGPU's NVDEC through PyAV's ``HWAccel("cuda")`` (FFmpeg's h264_cuvid path);
* ``vaapi``: Intel/AMD through PyAV's ``HWAccel("vaapi")`` (needs an FFmpeg built with VAAPI:
  PyPI's PyAV wheels are not; a source build or the distribution's is);
* ``jetson``: Jetson's NVDEC is not reachable through FFmpeg: GStreamer's ``nvv4l2decoder``
  (``nvjpegdec`` for MJPEG), see ``jetson_pipeline``, run by JetPack's OpenCV (cv2 with
  GStreamer);
* ``auto``: the first of those the platform offers (``nvdec`` where PyAV lists a CUDA device
  and a GPU is there, ``vaapi`` where it lists VAAPI and /dev/dri exists), else software; the
  choice is logged once per camera. Every hardware path keeps PyAV's software fallback.
"""

from __future__ import annotations

import logging
import os

from ..errors import SourceError

log = logging.getLogger(__name__)
CHOICES = ("auto", "none", "jetson", "nvdec", "vaapi")
_DEVICE = {"nvdec": "cuda", "vaapi": "vaapi"}


def available() -> list[str]:
    """The hardware decoders this machine offers, best first."""
    try:
        from av.codec.hwaccel import hwdevices_available
        devices = set(hwdevices_available())
    except Exception:
        devices = set()
    out = []
    if "cuda" in devices and (os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")):
        out.append("nvdec")
    if "vaapi" in devices and os.path.isdir("/dev/dri"):
        out.append("vaapi")
    if os.path.exists("/etc/nv_tegra_release"):
        out.append("jetson")
    return out


def choose(hwaccel: str, camera: str) -> str:
    """The decoder path a camera's ``hwaccel`` setting gets here: none, nvdec, vaapi or jetson."""
    if hwaccel not in CHOICES:
        raise SourceError(f"camera {camera}: unknown hwaccel {hwaccel!r}", hint="one of: " + ", ".join(CHOICES))
    if hwaccel == "none":
        return "none"
    offered = available()
    if hwaccel == "auto":
        got = next((h for h in offered if h != "jetson"), "none")
        log.info("camera %s: hwaccel auto: %s", camera, got if got != "none" else "software decode "
                 "(no hardware decoder offered here)")
        return got
    if hwaccel not in offered:
        log.warning("camera %s: hwaccel %s is not offered here: software decode", camera, hwaccel)
        return "none"
    return hwaccel


def resolve_hwaccel(hwaccel: str, camera: str):
    """PyAV's HWAccel for the camera (software fallback allowed), or None for software decode."""
    got = choose(hwaccel or "none", camera)
    if got not in _DEVICE:           # none; jetson goes through GStreamer (jetson_pipeline), not PyAV
        return None
    from av.codec.hwaccel import HWAccel
    return HWAccel(device_type=_DEVICE[got], allow_software_fallback=True)


def jetson_pipeline(url: str, codec: str = "h264", latency_ms: int = 200, software: bool = False) -> str:
    """A GStreamer pipeline string decoding an RTSP stream on a Jetson's NVDEC (``software=True``:
    the same pipeline with the software decoders, which runs wherever GStreamer does)."""
    depay = {"h264": "rtph264depay ! h264parse", "h265": "rtph265depay ! h265parse",
             "mjpeg": "rtpjpegdepay ! jpegparse"}[codec]
    if software:
        dec = {"h264": "avdec_h264", "h265": "avdec_h265", "mjpeg": "jpegdec"}[codec] + " ! videoconvert"
    else:
        dec = ("nvjpegdec" if codec == "mjpeg" else "nvv4l2decoder") + \
            " ! nvvidconv ! video/x-raw, format=BGRx ! videoconvert"
    return (f"rtspsrc location={url} latency={latency_ms} protocols=tcp ! {depay} ! {dec} ! "
            "video/x-raw, format=BGR ! appsink name=sink drop=true max-buffers=1 sync=false")
