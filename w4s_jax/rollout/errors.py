"""Error types of the rollout layer.

The split that matters: an `InfraError` is the executor API or our own machinery failing; it must never
be scored as a wrong answer nor shown to the meta-agent as a bug in its workflow. Everything caused by
the workflow itself (bad code, bad arguments to `agent.*`) is a `WorkflowError` or an ordinary exception.
"""
from __future__ import annotations


class InfraError(RuntimeError):
    """The executor API (or the sandbox machinery) failed after retries; not the workflow's fault."""

    def __init__(self, message: str, *, kind: str = "api"):
        super().__init__(message)
        self.kind = kind


class BudgetExceededError(InfraError):
    """The run's spending cap is reached: no new API calls are started."""

    def __init__(self, message: str):
        super().__init__(message, kind="budget")


class RequestRejectedError(ValueError):
    """The API refused the request itself (HTTP 400/413/422): the workflow asked for something invalid."""


class MalformedReplyError(InfraError):
    """The server answered 200 with a body that is not a valid chat completion."""

    def __init__(self, message: str):
        super().__init__(message, kind="malformed_reply")


class WorkflowCodeError(ValueError):
    """Workflow code that cannot be loaded: syntax error, no `solver`, or an exception at import time."""


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot be set up here; untrusted code is refused rather than run unconfined."""


class ProtocolError(RuntimeError):
    """The sandbox worker sent something that is not a valid control message."""
