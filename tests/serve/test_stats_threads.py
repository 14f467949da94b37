"""LiveStats is written by a stream's thread and read by the HTTP threads (/metrics, /api/streams):
reading never fails while it is written ("deque mutated during iteration" was a 500 of /metrics in
the #22 soak)."""

import sys
import threading

from avgn_edge.serve.stats import LiveStats


def test_recent_rate_and_summary_read_while_written():
    st = LiveStats()
    for _ in range(64):
        st.snippet(1.0, True)
    stop, errors = threading.Event(), []

    def write():
        k = 0
        while not stop.is_set():
            st.snippet(1.0, True)
            st.decision({f"stage{k % 50}": 1.0}, 5.0)    # new stage names while summary() reads them
            k += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)                          # switch threads as often as the interpreter can
    t = threading.Thread(target=write)
    t.start()
    try:
        for k in range(5000):
            try:
                st.recent_rate()
                if k % 50 == 0:
                    st.summary()
            except RuntimeError as exc:
                errors.append(str(exc))
                break
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert errors == []
