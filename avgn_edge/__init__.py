"""avgn-edge: the Audio-Visual Glance Network, from training to real-time edge inference.

    >>> from avgn_edge import Recognizer
    >>> rec = Recognizer.load("synth")                      # doctest: +SKIP
    >>> rec.classify_clip("clip.mp4").top(3)                # doctest: +SKIP

Importing the package is cheap: heavy modules load when first used. It has no side effects: the
emulated GPU (AVGN_EMULATE_GPU=1) starts at the command-line entry (deps.start_requested), or in a
library with ``avgn_edge.emulator.activate()``.
"""

from .version import __version__

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
