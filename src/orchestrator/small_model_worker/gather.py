"""Gathering: requests that arrive together share one piece of batched work.

A ``for_each`` step over 1,000 reviews asks the small model 1,000 times for one text each. Asked one by one,
each request pays a whole model call (or a whole CPU batch). :class:`Gatherer` lets them share: the first
request for a key waits `window_s` for others of the same key (same task, same labels), then answers the
texts of all of them in one `answer(texts)`, and each request gets back the answers to its own texts.

    gatherer = Gatherer(window_s=0.01)
    answers = await gatherer.run(key, [text], ask_in_batches)   # {text: answer}

If the request doing the work is cancelled or fails, the requests that joined it do their own work instead,
so nobody waits on a request that went away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

__all__ = ["Gatherer"]

T = TypeVar("T", bound=Hashable)
A = TypeVar("A")

AnswerAll = Callable[[list[T]], Awaitable[dict[T, A]]]
"""Answers a list of distinct texts: ``{text: answer}`` (a text left out has no answer)."""


@dataclass
class _Gathering(Generic[T, A]):
    """The requests of one key waiting to be answered together."""

    items: dict[T, None]
    done: anyio.Event = field(default_factory=anyio.Event)
    answers: dict[T, A] = field(default_factory=dict)
    abandoned: bool = False  # the request doing the work was cancelled or failed


class Gatherer(Generic[T, A]):
    """Shares `answer` calls between the requests of one key that arrive within `window_s` of the first.

    Args:
        window_s: how long the first request of a key waits for others (0: no gathering).
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = max(0.0, window_s)
        self._open: dict[Hashable, _Gathering[T, A]] = {}

    async def run(self, key: Hashable, items: Sequence[T], answer: AnswerAll[T, A]) -> dict[T, A]:
        """The answers to `items` (distinct), from one `answer` call shared with the other requests of `key`."""
        if self.window_s <= 0:
            return await answer(list(items))
        group = self._open.get(key)
        if group is not None:  # another request of this key is gathering: join it, wait for its answers
            group.items.update(dict.fromkeys(items))
            await group.done.wait()
            if group.abandoned:
                return await answer(list(items))
            return {item: group.answers[item] for item in items if item in group.answers}
        group = self._open[key] = _Gathering(dict.fromkeys(items))
        try:
            try:
                await anyio.sleep(self.window_s)
            finally:
                del self._open[key]  # later requests start a gathering of their own
            group.answers = await answer(list(group.items))
        except BaseException:
            group.abandoned = True
            raise
        finally:
            group.done.set()
        return {item: group.answers[item] for item in items if item in group.answers}
