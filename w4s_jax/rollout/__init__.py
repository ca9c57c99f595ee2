"""Rollout side: the strong executor client, sandboxed workflow evaluation (no JAX needed here)."""
from .errors import (BudgetExceededError, InfraError, MalformedReplyError, RequestRejectedError,
                     SandboxUnavailableError, WorkflowCodeError)
from .evaluate import EvalResult, ItemRecord, check_workflow_code, evaluate_workflow
from .executor import ChatResult, Executor, Usage
from .pool import WorkerPool
from .sandbox import SandboxLimits, check_sandbox

__all__ = ["BudgetExceededError", "ChatResult", "EvalResult", "Executor", "InfraError", "ItemRecord",
           "MalformedReplyError", "RequestRejectedError", "SandboxLimits", "SandboxUnavailableError", "Usage",
           "WorkerPool", "WorkflowCodeError", "check_sandbox", "check_workflow_code", "evaluate_workflow"]
