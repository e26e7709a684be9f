"""A single validation finding, naming the step, the field and (when known) the line and column."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PlanIssue(BaseModel):
    """One problem in a plan.

    Attributes:
        code: a stable machine-readable kind, e.g. ``unknown_tool`` or ``cycle``.
        message: what is wrong, in one sentence.
        step_id: the step it concerns, if any.
        field: the field inside the plan or step, as a dotted path (``args.items``).
        hint: how to fix it, if there is something useful to say.
        line: 1-based line in the plan source, when the plan came from text.
        column: 1-based column in the plan source.
    """

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    step_id: str | None = None
    field: str | None = None
    hint: str | None = None
    line: int | None = None
    column: int | None = None

    def render(self) -> str:
        """One line for people: ``[line:col] step 'x' field: message (hint)``."""
        parts: list[str] = []
        if self.line is not None:
            parts.append(f"{self.line}:{self.column or 1}")
        if self.step_id is not None:
            parts.append(f"step {self.step_id!r}")
        if self.field:
            parts.append(self.field)
        where = " ".join(parts)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text
