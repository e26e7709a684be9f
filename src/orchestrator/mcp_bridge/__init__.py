"""MCP, both ways: MCP servers' tools in plans, our tools and the orchestrator served over MCP.

- :mod:`~orchestrator.mcp_bridge.config`: ``mcp_servers.json`` (the shape MCP hosts use);
- :mod:`~orchestrator.mcp_bridge.source`: the tool sources (configured servers; the built-in workers out
  of process with ``WORKERS_TRANSPORT=mcp``);
- :mod:`~orchestrator.mcp_bridge.connection`: one lazily started, restartable connection per server and run;
- :mod:`~orchestrator.mcp_bridge.tools`: MCP tools as orchestrator tools;
- :mod:`~orchestrator.mcp_bridge.server`: ``orchestrator mcp serve``;
- :mod:`~orchestrator.mcp_bridge.bench`: ``orchestrator bench mcp``.

The package is not called ``mcp`` so that it never shadows the SDK it is built on. It imports nothing
itself: its modules sit at different layers (``server`` and ``bench`` above the executor and the planner,
``source`` beside the workers, the rest below them), and importing one must not load the others.
"""
