"""The leak census of the gpu-marked tests on the emulated GPU (tests/conftest.py runs it around each).

A device keeps what a program forgets (cudart holds its own retain of the primary context), so a
leak there is silent; the emulator can count. Before the test: a retain of the primary context
(so nothing is destroyed behind our back when the test's last user releases it) and a census;
after it: the census again. What the test left is a failure: device or pinned allocations,
driver handles (streams, events, modules, graphs, graph execs), TensorRT execution contexts,
retains of the primary context, and the emulator's recorded violations (a context destroyed while
a graph captured from it lived). On a real GPU there is nothing to count: the census is off.
"""

from __future__ import annotations

import contextlib
import gc


def census() -> dict:
    from avgn_edge.emulator import trt_rules
    from avgn_edge.emulator.device import STATE
    gc.collect()
    p = STATE.primary
    handles = {(type(o).__name__, h) for h, o in (p.objects.items() if p is not None and p.alive else [])
               if not isinstance(h, tuple)}
    memory = {(a.kind, a.base, a.size) for a in STATE.memory.device.live() + STATE.memory.pinned.live()}
    contexts = {("IExecutionContext", id(c)) for c in list(trt_rules.LIVE_CONTEXTS)}
    retains = (p.refcount if p is not None and p.alive else 0) - int(STATE.cudart_retained)
    return {"handles": handles, "memory": memory, "contexts": contexts, "retains": retains,
            "violations": len(trt_rules.VIOLATIONS)}


def leaks(before: dict, after: dict) -> list[str]:
    out = []
    for key in ("handles", "memory", "contexts"):
        left = sorted(after[key] - before[key], key=str)
        if left:
            out.append(f"{len(left)} {key} left: {', '.join(map(str, left[:6]))}{' ...' if len(left) > 6 else ''}")
    if after["retains"] > before["retains"]:
        out.append(f"{after['retains'] - before['retains']} retain(s) of the primary context left")
    from avgn_edge.emulator import trt_rules
    out += trt_rules.VIOLATIONS[before["violations"]:]
    return out


@contextlib.contextmanager
def checked():
    """Yield; then fail the test if it left anything on the emulated GPU."""
    from avgn_edge import emulator
    if not emulator.active():
        yield
        return
    from avgn_edge.kernels.cuda_driver import PrimaryContext
    keeper = PrimaryContext()
    before = census()
    yield
    from avgn_edge.emulator.device import STATE
    lost = STATE.primary is not None and STATE.primary.sticky is not None
    if lost:                                          # the context is unusable for the process, as on a device:
        found = [f"the test lost the CUDA context ({STATE.primary.sticky.name})"]
        STATE.destroy(STATE.primary)                  # a fresh one for the next test (a new process, on a device)
        STATE.primary.refcount, STATE.cudart_retained = 0, False
        import pytest
        pytest.fail("; ".join(found), pytrace=False)
    after = census()
    keeper.release()
    found = leaks(before, after)
    if found:
        import pytest
        pytest.fail("the test left on the (emulated) GPU: " + "; ".join(found), pytrace=False)
