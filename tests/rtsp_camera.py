"""A local RTSP camera for tests: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0),
H.264 640x480, live test pattern, on 127.0.0.1; optionally with the camera's own sound.

    /usr/bin/python3 tests/rtsp_camera.py PORT [FPS] [FILE] [--audio CODEC] [--audio-delay S]
                                          [--auth USER:PASS] [--size WxH] [--hi WxH]
                                                                  ->  rtsp://127.0.0.1:PORT/cam

With FILE, the camera shows that video file (decoded by gstreamer1.0-libav, re-encoded as
H.264 at FPS; played from the start for each client, as a camera replaying a recording); with
``--audio`` the file's sound (or, without FILE, a 440 Hz tone) goes out in CODEC: pcmu, pcma
(G.711), aac (avenc_aac from gstreamer1.0-libav, else voaacenc), opus, mp3 (lamemp3enc), or
none (the default: a camera without a microphone). ``--audio-delay S`` starts the sound S
seconds after the picture (a camera whose audio track starts late). ``--auth`` asks for those
Basic credentials. ``--size`` sets /cam's picture size (640x480 by default); ``--hi WxH`` adds a
second mount, /hi, of the same scene and sound at that size (a camera's main stream beside its
substream: the detect and record inputs of one camera).

Runs under the *system* python3 (python3-gi); the test suite starts one process per camera
and cuts a camera by stopping its process (what a rebooting camera looks like to a client).
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PAY = {"pcmu": "mulawenc ! rtppcmupay", "pcma": "alawenc ! rtppcmapay",
       "aac": "{aac} ! aacparse ! rtpmp4gpay", "opus": "opusenc ! rtpopuspay", "mp3": "lamemp3enc ! rtpmpapay"}
RATE = {"pcmu": 8000, "pcma": 8000, "aac": 44100, "opus": 48000, "mp3": 44100}


def audio_branch(codec: str, head: str, delay: float) -> str:
    enc = PAY[codec].format(aac="avenc_aac" if Gst.ElementFactory.find("avenc_aac") else "voaacenc")
    late = "valve name=late drop=true ! " if delay > 0 else ""     # opened after `delay` s (main)
    return (f"{head} ! audioconvert ! audioresample ! audio/x-raw,rate={RATE[codec]},channels=1 ! {late}"
            f"{enc} name=pay1 pt=97")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("fps", type=int, nargs="?", default=10)
    ap.add_argument("file", nargs="?")
    ap.add_argument("--audio", choices=["none", *PAY], default="none")
    ap.add_argument("--audio-delay", type=float, default=0.0)
    ap.add_argument("--auth")
    ap.add_argument("--size")
    ap.add_argument("--hi")
    a = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    mounts = {"/cam": mount(server, a, a.size or ("" if a.file else "640x480"))}
    if a.hi:
        mounts["/hi"] = mount(server, a, a.hi)
    for path, factory in mounts.items():
        server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{a.port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print("ready", flush=True)
    loop.run()


def mount(server, a, size: str):
    """One mount's media factory: the scene at ``size`` ("WxH"; "": the file's own), its sound, its auth."""
    fps = a.fps
    dims = ",width={},height={}".format(*size.split("x")) if size else ""
    video = f"videotestsrc is-live=true pattern=ball ! video/x-raw{dims},framerate={fps}/1"
    audio = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3"
    if a.file:
        uri = Gst.filename_to_uri(a.file)
        video = (f"uridecodebin uri={uri} name=d ! videoconvert ! videoscale ! videorate ! "
                 f"video/x-raw,format=I420{dims},framerate={fps}/1")
        audio = "d. ! queue"
    parts = [f"{video} ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=500 "
             "! rtph264pay name=pay0 pt=96 config-interval=1"]
    if a.audio != "none":
        parts.append(audio_branch(a.audio, audio, a.audio_delay))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( " + " ".join(parts) + " )")
    factory.set_shared(True)
    if a.audio != "none" and a.audio_delay > 0:
        def configure(_factory, media):
            valve = media.get_element().get_by_name("late")
            GLib.timeout_add(int(a.audio_delay * 1000), lambda: valve.set_property("drop", False) or False)
        factory.connect("media-configure", configure)
    if a.auth:
        user, _, password = a.auth.partition(":")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(Gst.Structure.new_from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
        factory.set_permissions(perms)
    return factory


if __name__ == "__main__":
    main()
