"""Scan JSON-ish text: the characters that stand outside string literals, with their positions."""

from __future__ import annotations

from collections.abc import Iterator


def outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """Yield (index, char) for every character of `text` from `start` that is not inside a "..." string.

    The quotes themselves are yielded; escaped quotes inside strings are not mistaken for their end.
    """
    in_string = escaped = False
    for index in range(start, len(text)):
        ch = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                yield index, ch
        else:
            if ch == '"':
                in_string = True
            yield index, ch
