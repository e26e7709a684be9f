"""`orchestrator fake-model`: a stand-in small-model server on 127.0.0.1, to try the small-model path offline.

It serves Ollama's API (``/api/chat``, ``/api/generate``, ``/api/tags``), the OpenAI-compatible
``/v1/chat/completions`` and Azure AI's ``/models/chat/completions``, and answers the small-model worker's
prompts like a rule-following model (:class:`~orchestrator.testing.fake_small_model.SmallModelResponder`),
with a model-like latency. It is the server the tests use. Stop it (Ctrl-C) during a run to see the
keyword fallback take over.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from orchestrator.commands._common import stderr, stdout
from orchestrator.errors import ConfigurationError


def register(app: typer.Typer) -> None:
    app.command("fake-model")(fake_model)


def fake_model(
    port: Annotated[int, typer.Option(min=0, max=65535, help="port on 127.0.0.1 (0: a free one)")] = 11434,
    latency_ms: Annotated[tuple[int, int], typer.Option(help="per-call latency range in ms (low high)")] = (200, 400),
    tokens_per_s: Annotated[float, typer.Option(min=1, help="generation speed")] = 150.0,
) -> None:
    """Serve a fake small model (Ollama and OpenAI-compatible APIs) on 127.0.0.1 until Ctrl-C."""
    from orchestrator.testing.fake_llm import FakeLLMServer
    from orchestrator.testing.fake_small_model import SmallModelResponder

    low, high = sorted(latency_ms)
    responder = SmallModelResponder(latency_s=(low / 1000, high / 1000))
    server = FakeLLMServer(default=responder, tokens_per_s=tokens_per_s, port=port)
    try:
        server.start()
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    stdout.print(f"fake small model listening on {server.base_url}", markup=False)
    stderr.print(
        f"try: USE_SMALL_MODEL=true SMALL_MODEL_BACKEND=ollama OLLAMA_API_URL={server.base_url} python run_demo.py\n"
        f"or:  SMALL_MODEL_BACKEND=openai_compatible SMALL_MODEL_BASE_URL={server.openai_url}\n"
        "Ctrl-C (or kill) stops it",
        markup=False,
    )
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or `kill`, even when started in the background
        signal.signal(number, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        stderr.print(f"fake small model stopped after {responder.calls} calls", markup=False)
