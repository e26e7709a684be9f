"""Every error orchestrator raises, under one root.

```
OrchestratorError
├── UserError                      you set it up wrong: fix the input and try again
│   ├── ConfigurationError         a setting, key or back-end is missing or wrong
│   ├── PlanLoadError              a plan file cannot be read or is not JSON (path, line, column)
│   ├── PlanValidationError        a plan breaks the format or the registry (.issues, each naming its step)
│   ├── UnknownToolError           a tool name not in the registry (.name, .suggestions)
│   └── InputError                 a run input is missing, undeclared or malformed
└── RunError                       it failed at run time
    ├── ToolError                  a tool failed (.retryable decides whether the executor tries again)
    │   └── ToolTimeout            a step attempt exceeded its timeout_s (retryable)
    ├── PlanningError              the planner could not produce a valid plan (.issues, .attempts)
    └── ModelError                 a model back-end failed (.status_code, .body, .retryable)
```

Foreign exceptions are mapped onto this tree at the border where they enter (the HTTP clients,
the SDK adapters, the OCR engines), never deep inside the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Issue(Protocol):
    """One finding about a plan (:class:`orchestrator.plan.PlanIssue`), as the errors carry it.

    A protocol, so that this module (under every layer) imports nothing of the layers above it.
    """

    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def step_id(self) -> str | None: ...
    @property
    def field(self) -> str | None: ...
    @property
    def hint(self) -> str | None: ...
    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> int | None: ...
    def render(self) -> str:
        """One line for people."""
        ...


class OrchestratorError(Exception):
    """Root of every error this package raises on purpose."""


class UserError(OrchestratorError):
    """The input or configuration is wrong; the message says what and where."""


class ConfigurationError(UserError):
    """A setting, key, back-end or optional dependency is missing or wrong."""


class InputError(UserError):
    """A run input is missing, undeclared or of the wrong form."""


class PlanLoadError(UserError):
    """A plan file cannot be read or is not valid JSON."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, column: int | None = None):
        where = ""
        if path is not None:
            where = path
            if line is not None:
                where += f":{line}:{column or 1}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.column = column


class PlanValidationError(UserError):
    """A plan failed validation; `.issues` lists every problem found, not just the first."""

    def __init__(self, issues: Sequence[Issue], *, source: str | None = None):
        self.issues: list[Issue] = list(issues)
        self.source = source
        count = len(self.issues)
        head = f"{source}: " if source else ""
        lines = [f"{head}invalid plan: {count} problem{'s' if count != 1 else ''}"]
        lines.extend(f"  - {issue.render()}" for issue in self.issues)
        super().__init__("\n".join(lines))


class UnknownToolError(UserError):
    """A tool name that is not registered."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()):
        self.name = name
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown tool {name!r}{hint}")


class RunError(OrchestratorError):
    """Something failed while running."""


class ToolError(RunError):
    """A tool failed. Set `retryable=True` for failures worth another attempt (timeouts, 429, 5xx)."""

    def __init__(self, message: str, *, retryable: bool = False, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.details = details or {}


class ToolTimeout(ToolError):
    """A step attempt ran past its `timeout_s`."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class ModelError(RunError):
    """A model back-end (planner or small model) failed."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: str | None = None,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.retryable = retryable


class PlanningError(RunError):
    """The planner gave up: `.issues` are the validator's last findings, `.attempts` how many were made."""

    def __init__(self, message: str, *, issues: Sequence[Issue] = (), attempts: int = 0, last_output: str = ""):
        self.issues: list[Issue] = list(issues)
        self.attempts = attempts
        self.last_output = last_output
        lines = [message]
        lines.extend(f"  - {issue.render()}" for issue in self.issues)
        super().__init__("\n".join(lines))


def is_retryable(exc: BaseException) -> bool:
    """Whether an exception is worth another attempt under a step's retry policy."""
    if isinstance(exc, ToolError | ModelError):
        return exc.retryable
    return isinstance(exc, TimeoutError | ConnectionError)
