"""The sandbox behind the code_interpreter tool: stateful Python sessions, one per thread,
each in its own namespaces with a working directory seen as /mnt/data. `interface` is what the
tool uses; `local` runs sessions on this machine. See docs/SANDBOX.md for the guarantees."""

from .interface import (
    WORK_DIR,
    ExecutionResult,
    Isolation,
    IsolationUnavailable,
    Limits,
    Sandbox,
    SandboxError,
    SandboxPathError,
)
from .local import LocalSandbox, probe

__all__ = [
    "WORK_DIR",
    "ExecutionResult",
    "Isolation",
    "IsolationUnavailable",
    "Limits",
    "LocalSandbox",
    "Sandbox",
    "SandboxError",
    "SandboxPathError",
    "probe",
]
