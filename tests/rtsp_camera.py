"""A local RTSP camera for tests: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0),
H.264 640x480, live test pattern, on 127.0.0.1.

    /usr/bin/python3 tests/rtsp_camera.py PORT [FPS] [FILE]   ->  rtsp://127.0.0.1:PORT/cam

With FILE, the camera shows that video file (decoded by gstreamer1.0-libav, re-encoded as
H.264 at FPS; played from the start for each client, as a camera replaying a recording).

Runs under the *system* python3 (python3-gi); the test suite starts one process per camera
and cuts a camera by stopping its process (what a rebooting camera looks like to a client).
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port, fps = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10
    source = f"videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate={fps}/1"
    if len(sys.argv) > 3:
        uri = Gst.filename_to_uri(sys.argv[3])
        source = (f"uridecodebin uri={uri} ! videoconvert ! videoscale ! videorate ! "
                  f"video/x-raw,format=I420,framerate={fps}/1")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( {source} "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=500 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
