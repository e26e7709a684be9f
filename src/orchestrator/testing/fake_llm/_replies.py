"""What a script can answer with: a :class:`Reply` (text or structured data, with its pacing) or a :class:`Failure`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    """A scripted answer.

    Args:
        text: the answer's text (for a structured call, the JSON document as text).
        data: a JSON value to return as the structured output (used when `text` is None).
        input_tokens: reported prompt tokens (default: an estimate from the request).
        output_tokens: reported completion tokens (default: the number of ~4-character tokens sent).
        finish_reason: the stop reason to report (default: the API's normal one).
        delay_s: wait this long before sending anything (to trigger client timeouts).
        cut_after: close the connection after this many content chunks of a stream (or, for a
            non-streamed answer, halfway through the body), without ending it properly.
        cut_cleanly: with `cut_after`, end the HTTP body properly instead, so only the API-level end of
            the stream (``[DONE]``, ``message_stop``, ``done``) is missing.
        tokens_per_s: this reply's generation speed (default: the server's).
    """

    text: str | None = None
    data: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    delay_s: float = 0.0
    cut_after: int | None = None
    cut_cleanly: bool = False
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class Failure:
    """A scripted HTTP error, in the API's own error format.

    Args:
        status: the HTTP status (429, 500, 529, 401...).
        message: the error message (default: a realistic one for the status).
        retry_after: seconds to send as ``Retry-After`` (floats are fine for the SDKs).
        delay_s: wait this long before answering.
    """

    status: int = 500
    message: str | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
