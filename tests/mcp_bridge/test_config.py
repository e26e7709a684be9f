"""mcp_servers.json: the hosts' shape, our limits, and errors that name file, line, server and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.mcp_bridge.config import load_config, parse_config


def test_reads_stdio_and_http_servers_in_the_hosts_shape_and_ignores_host_only_keys() -> None:
    config = parse_config(
        '{"mcpServers": {"git": {"command": "mcp-server-git", "args": ["-r", "."], "env": {"A": "1"},'
        ' "alwaysAllow": ["git_status"], "timeout_s": 5, "concurrency": 2},'
        ' "docs": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer x"}},'
        ' "off": {"command": "x", "disabled": true}}}'
    )
    git, docs = config.servers["git"], config.servers["docs"]
    assert (git.transport, git.args, git.env) == ("stdio", ["-r", "."], {"A": "1"})
    assert (git.timeout_s, git.concurrency) == (5, 2)
    assert (docs.transport, docs.headers) == ("http", {"Authorization": "Bearer x"})
    assert sorted(config.enabled()) == ["docs", "git"]


def test_the_fingerprint_changes_with_what_decides_the_tools_and_not_with_limits() -> None:
    a = parse_config('{"mcpServers": {"s": {"command": "x", "args": ["1"]}}}').servers["s"]
    b = parse_config('{"mcpServers": {"s": {"command": "x", "args": ["2"]}}}').servers["s"]
    c = parse_config('{"mcpServers": {"s": {"command": "x", "args": ["1"], "timeout_s": 3}}}').servers["s"]
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == c.fingerprint()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"mcpServers": {"s": {"command": "x",}}}', "cfg.json:1:38: invalid JSON"),
        ('{"servers": {}}', 'expected {"mcpServers"'),
        ('{"mcpServers": {"a.b": {"command": "x"}}}', "cfg.json:1:24: server name 'a.b'"),
        ('{"mcpServers": {"s": {"args": []}}}', "server 's': Value error, needs either 'command'"),
        ('{"mcpServers": {"s": {"command": "x", "url": "http://h"}}}', "not both or neither"),
        ('{"mcpServers": {"s": {"url": "ftp://h"}}}', "'url' must start with http"),
        ('{"mcpServers": {"s": {"command": "x",\n "timeout_s": -1}}}', "cfg.json:2:15: server 's' field 'timeout_s'"),
        ('{"mcpServers": {"s": {"command": "x", "args": "not-a-list"}}}', "field 'args'"),
    ],
)
def test_a_broken_config_is_one_clear_error_naming_where(text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_config(text, origin="cfg.json")
    assert expected in str(info.value)


def test_a_missing_file_names_the_setting_and_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ORCHESTRATOR_MCP_CONFIG or --mcp-config"):
        load_config(tmp_path / "nope.json")
