"""The dependency graph of a plan: edges, cycles (as a readable path), topological order, critical path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as a closed path `[a, b, a]`, or None. Only edges between known nodes count.

    Iterative depth-first search, so a 10,000-step chain cannot overflow the stack.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(deps, WHITE)
    for root in deps:
        if color[root] != WHITE:
            continue
        stack: list[tuple[str, list[str]]] = [(root, [d for d in deps[root] if d in color])]
        color[root] = GREY
        path = [root]
        while stack:
            node, pending = stack[-1]
            if not pending:
                color[node] = BLACK
                stack.pop()
                path.pop()
                continue
            nxt = pending.pop()
            if color[nxt] == GREY:
                return [*path[path.index(nxt) :], nxt]
            if color[nxt] == WHITE:
                color[nxt] = GREY
                path.append(nxt)
                stack.append((nxt, [d for d in deps[nxt] if d in color]))
    return None


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes in an order where every node comes after its dependencies (Kahn; stable in input order)."""
    remaining = {node: len(ds) for node, ds in deps.items()}
    dependents: dict[str, list[str]] = {node: [] for node in deps}
    for node, ds in deps.items():
        for d in ds:
            dependents[d].append(node)
    order = [node for node, count in remaining.items() if count == 0]
    for node in order:  # the list grows while we walk it
        for child in dependents[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                order.append(child)
    if len(order) != len(deps):
        raise ValueError("graph has a cycle")
    return order


def critical_path(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """The longest chain of dependent steps (by step count), first step first."""
    if not deps:
        return []
    length: dict[str, int] = {}
    best_parent: dict[str, str | None] = {}
    for node in topological_order(deps):
        parent = max(deps[node], key=lambda d: length[d], default=None)
        best_parent[node] = parent
        length[node] = 1 + (length[parent] if parent is not None else 0)
    end: str | None = max(length, key=lambda n: length[n])
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = best_parent[end]
    return path[::-1]
