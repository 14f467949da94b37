"""The real ``cuda.bindings.driver`` module, whose enums and handle classes the emulator reuses.

Importing it loads no driver library (only calling its functions does), so it works on any
machine with cuda-bindings installed. Kept here because, once the emulator is active, the name
``cuda.bindings.driver`` resolves to the emulator itself.
"""

from __future__ import annotations

import importlib
import sys

from ..errors import MissingDependency

_REAL: dict[str, object] = {}
HINT = "pip install 'avgn-edge[emulate]' (cuda-bindings and NVRTC: the emulator runs real NVRTC cubins)"


def driver():
    if "driver" not in _REAL:
        current = sys.modules.get("cuda.bindings.driver")
        if current is not None and not getattr(current, "EMULATED", False):
            _REAL["driver"] = current
        else:
            saved = sys.modules.pop("cuda.bindings.driver", None)
            try:
                _REAL["driver"] = importlib.import_module("cuda.bindings.driver")
            except ImportError as exc:
                raise MissingDependency(f"the emulated GPU needs cuda-bindings ({exc})", hint=HINT) from None
            finally:
                if saved is not None:
                    sys.modules["cuda.bindings.driver"] = saved
                    setattr(sys.modules["cuda.bindings"], "driver", saved)
    return _REAL["driver"]
