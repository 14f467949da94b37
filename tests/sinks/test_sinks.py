"""The sinks' worker: a slow or failing output drops or counts its own work and never makes the caller wait."""

import threading
import time

import numpy as np

from output_rigs import decision

from avgn_edge.sinks.base import Fanout, Sink, Worker


class Stuck(Sink):
    name = "stuck"
    wants_frames = True

    def __init__(self):
        self.release = threading.Event()
        self.seen = 0

    def decision(self, camera, result):
        self.release.wait(30)
        self.seen += 1


class Broken(Sink):
    name = "broken"

    def decision(self, camera, result):
        raise RuntimeError("the disk is full")


class AudioOnly(Sink):
    name = "level"
    wants_frames = "audio"

    def __init__(self):
        self.got = []

    def frame(self, camera, frame, audio, t):
        self.got.append((frame, len(audio)))


def test_a_stuck_sink_drops_its_own_work_and_the_others_go_on():
    stuck, broken, level = Stuck(), Broken(), AudioOnly()
    out = Fanout([Worker(stuck, maxsize=4), Worker(broken), Worker(level)])
    t0 = time.monotonic()
    for i in range(50):
        out.decision("door", decision(float(i)))
        out.frame("door", np.zeros((8, 8, 3), np.uint8), np.zeros(160, np.float32), float(i))
    assert time.monotonic() - t0 < 1.0                       # nobody waited on the stuck sink
    w_stuck, w_broken, w_level = out.workers
    assert w_stuck.counters()["dropped"] >= 50 - 4 - 1       # its queue holds 4, one is in its hands
    stuck.release.set()
    out.close()
    assert w_broken.counters() == {"dropped": 0, "errors": 50}
    assert level.got == [(None, 160)] * 50                   # the sound only: no frame kept in its queue
    assert 1 <= stuck.seen <= 5
