"""Errors a user can cause, as opposed to bugs.

The CLI prints an ``AvgnError`` as one line (plus its hint) and exits with code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AvgnError(Exception):
    """A failure caused by the user's input or environment, with an optional hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.args[0]


class InputError(AvgnError, ValueError):
    """A bad argument or bad data (shape, rate, file)."""


class ConfigError(InputError):
    """A service configuration that cannot be used (the message names the key)."""


class BundleError(AvgnError):
    """A model bundle or checkpoint that is missing, changed or malformed."""


class EngineError(AvgnError):
    """A TensorRT engine that cannot be built or used."""


class CudaDriverError(EngineError):
    """A CUDA driver call failed; ``code`` is the CUresult's name (``CUDA_ERROR_INVALID_CONTEXT``)."""

    def __init__(self, message: str, hint: str | None = None, code: str = ""):
        super().__init__(message, hint)
        self.code = code


class BackendError(AvgnError):
    """A call into a backend that failed for a reason outside this process: a remote inference
    server that is down, timed out, lacks a model or serves another version of it. ``live`` and
    ``serve`` count these and keep running; one-shot commands end with the message."""


class SourceError(AvgnError):
    """A video or audio source that cannot be opened or read."""


class MissingDependency(AvgnError, ImportError):
    """An optional package that this feature needs is not installed."""
