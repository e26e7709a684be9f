"""Properties of the sandbox's reply channel: JSON goes through unchanged, and whatever hostile code writes
on the reply pipe ends as a reply or one ToolError, never anything else.

(The `sandboxed` runner holds no state between examples, so sharing it across them is safe.)
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import ToolError
from orchestrator.sandbox.launcher import SandboxReply

from .conftest import Runner

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON)
def test_any_json_input_comes_back_unchanged(sandboxed: Runner, value: Any) -> None:
    reply = sandboxed("result = value", {"value": value})
    assert reply.ok, reply.error
    assert reply.result == json.loads(json.dumps(value))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=64) | st.sampled_from([b"99999999999\n", b'12\n{"ok": true}', b"3\n{}x", b"\n"]))
def test_anything_written_on_the_reply_pipe_ends_as_a_reply_or_a_tool_error(sandboxed: Runner, garbage: bytes) -> None:
    code = f"import os, sys\nos.write(int(sys.orig_argv[-1]), {garbage!r})\nresult = 'done'"
    try:
        reply = sandboxed(code)
    except ToolError as exc:
        assert str(exc).startswith("code_exec: ")
    else:
        assert isinstance(reply, SandboxReply)
    sandboxed.assert_alive()
