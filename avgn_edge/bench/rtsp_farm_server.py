"""Many RTSP cameras from one recording, re-streamed without re-encoding: the bench's camera farm.

    /usr/bin/python3 avgn_edge/bench/rtsp_farm_server.py MOUNTS FILE
        prints "ready PORT": rtsp://127.0.0.1:PORT/cam0 ... /cam<MOUNTS-1> (a free port)

FILE (MP4: H.264 without B-frames, AAC or G.711 µ-law sound; camera_farm.py writes it) is demuxed
once into memory; each mount is one shared GStreamer RTSP media whose appsrcs replay those
packets in a loop, time stamps moved on by the loop's length each round, paced by the media's
clock. So the farm's CPU is payloading and sending, not encoding: a bench on the same cores
measures the client. Runs under the *system* python3 (python3-gi, gir1.2-gst-rtsp-server-1.0);
the avgn_edge runtime never imports it. SIGTERM stops it.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PAYLOADER = {"video/x-h264": "rtph264pay config-interval=-1", "audio/mpeg": "rtpmp4gpay",
             "audio/x-mulaw": "rtppcmupay"}


def load_tracks(path: str) -> list:
    """[(caps, [buffers])] per track (video first): the file's packets as the demuxer gives them."""
    pipe = Gst.parse_launch("filesrc name=file ! qtdemux name=d d.video_0 ! queue ! appsink name=v sync=false "
                            "d.audio_0 ! queue ! appsink name=a sync=false")
    pipe.get_by_name("file").set_property("location", path)
    pipe.set_state(Gst.State.PLAYING)
    tracks = []
    for name in ("v", "a"):
        sink, caps, bufs = pipe.get_by_name(name), None, []
        while True:
            sample = sink.emit("try-pull-sample", 10 * Gst.SECOND)
            if sample is None:
                break
            caps = caps or sample.get_caps()
            bufs.append(sample.get_buffer())
        if bufs:
            tracks.append((caps, bufs))
    pipe.set_state(Gst.State.NULL)
    if not tracks or not tracks[0][0].to_string().startswith("video/x-h264"):
        sys.exit(f"{path}: no H.264 video track")
    return tracks


class Replay:
    """One track's packets, endlessly: the n-th round is shifted by n loop lengths."""

    def __init__(self, bufs: list, period: int):
        self.bufs = [b for b in bufs if b.pts < period]   # sound past the picture's end would overlap
        self.period, self.i = period, 0

    def feed(self, appsrc, _length):
        n, k = divmod(self.i, len(self.bufs))
        src = self.bufs[k]      # a new buffer on the same memory (Buffer.copy() in PyGObject is the same buffer)
        buf = src.copy_region(Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.MEMORY, 0, src.get_size())
        buf.pts = buf.dts = src.pts + n * self.period
        self.i += 1
        appsrc.emit("push-buffer", buf)


def factory_for(tracks: list, period: int):
    launch = " ".join(f"appsrc name=src{i} format=time ! {PAYLOADER[caps.get_structure(0).get_name()]} "
                      f"name=pay{i} pt={96 + i}" for i, (caps, _) in enumerate(tracks))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {launch} )")
    factory.set_shared(True)

    def configure(_factory, media):                     # a fresh replay per prepared media
        for i, (caps, bufs) in enumerate(tracks):
            src = media.get_element().get_by_name(f"src{i}")
            src.set_property("caps", caps)
            src.connect("need-data", Replay(bufs, period).feed)
    factory.connect("media-configure", configure)
    return factory


def main():
    mounts, path = int(sys.argv[1]), sys.argv[2]
    Gst.init(None)
    tracks = load_tracks(path)
    video = tracks[0][1]
    period = video[-1].pts + video[-1].duration             # the picture's length sets the loop
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")                                  # the OS picks a free port
    for i in range(mounts):
        server.get_mount_points().add_factory(f"/cam{i}", factory_for(tracks, period))
    if server.attach(None) == 0:
        sys.exit("cannot listen on 127.0.0.1")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print("ready", server.get_bound_port(), flush=True)
    loop.run()


if __name__ == "__main__":
    main()
