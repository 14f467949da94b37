"""avgn-edge: the Audio-Visual Glance Network, from training to real-time edge inference.

    >>> from avgn_edge import Recognizer
    >>> rec = Recognizer.load("synth")                      # doctest: +SKIP
    >>> rec.classify_clip("clip.mp4").top(3)                # doctest: +SKIP

Importing the package is cheap: heavy modules load when first used.
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("AVGN_EMULATE_GPU", "").strip().lower() not in ("", "0", "false", "no", "off"):
    def _emulate():     # the emulated GPU (avgn_edge/emulator): tensorrt and cuda.bindings.driver resolve to it
        import logging

        from .emulator import activate
        from .errors import MissingDependency
        try:
            activate()
        except MissingDependency as exc:
            logging.getLogger(__name__).warning("AVGN_EMULATE_GPU is set but the emulated GPU cannot start: %s (%s)",
                                                exc, exc.hint)
    _emulate()

__all__ = ["Recognizer", "Result", "load_bundle", "__version__"]


def __getattr__(name):
    if name == "Recognizer":
        from .runtime.recognizer import Recognizer
        return Recognizer
    if name == "Result":
        from .runtime.result import Result
        return Result
    if name == "load_bundle":
        from .bundle import load_bundle
        return load_bundle
    raise AttributeError(name)
