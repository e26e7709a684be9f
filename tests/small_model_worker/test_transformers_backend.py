"""TransformersBackend on a tiny random model built in a temp folder: loading, generation, constrained JSON.

The model knows nothing, so every valid JSON object it writes is the constraint's doing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.context import Usage
from orchestrator.errors import ConfigurationError, ModelError
from orchestrator.small_model_worker.backends.transformers import TransformersBackend
from orchestrator.testing.tiny_models import build_tiny_causal_lm

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("lmformatenforcer")

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

PROMPT = [
    {"role": "system", "content": "Answer with JSON only."},
    {"role": "user", "content": "Receipt: 2 x milk 1.50, bread 2.25. Total 5.25."},
]


class Total(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str = Field(max_length=16)
    total: float


class Classification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["food", "travel", "office", "other"]


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=12)
    quantity: int
    price: float


class LineItems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[LineItem] = Field(min_length=1, max_length=3)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """A model this small only loses time to thread hand-offs, more so on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def backend(model_dir: Path) -> TransformersBackend:
    return TransformersBackend(str(model_dir), max_new_tokens=1024)


async def test_the_model_loads_from_a_local_folder_on_first_use(
    backend: TransformersBackend, capfd: pytest.CaptureFixture[str]
) -> None:
    assert backend.model is None

    await backend.load()

    assert isinstance(backend.model, transformers.LlamaForCausalLM)
    assert backend.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "Loading weights" not in capfd.readouterr().err  # no progress bar on the user's terminal


async def test_unconstrained_text_generation_stops_at_max_new_tokens(backend: TransformersBackend) -> None:
    result = await backend.generate_text("Say something.", max_new_tokens=8)

    assert isinstance(result.text, str)
    assert result.data is None
    assert not result.constrained
    assert 1 <= result.output_tokens <= 8
    assert result.usage == Usage(calls=1, input_tokens=result.input_tokens, output_tokens=result.output_tokens)


async def test_chat_messages_go_through_the_tokenizers_chat_template(
    backend: TransformersBackend, model_dir: Path
) -> None:
    result = await backend.generate_text(PROMPT, max_new_tokens=1)

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    templated = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    assert templated.endswith("<|assistant|>\n")
    assert result.input_tokens == len(tokenizer(templated, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("schema_model", [Total, Classification, LineItems], ids=lambda m: m.__name__)
async def test_constrained_output_parses_and_validates_against_the_schema(
    backend: TransformersBackend, schema_model: type[BaseModel]
) -> None:
    result = await backend.generate_json(PROMPT, schema_model.model_json_schema())

    assert result.constrained
    assert json.loads(result.text) == result.data
    schema_model.model_validate(result.data, strict=True)  # no extra keys, no coerced types
    assert result.output_tokens <= 1024


async def test_a_plain_prompt_is_used_when_the_tokenizer_has_no_chat_template(tmp_path: Path) -> None:
    path = build_tiny_causal_lm(tmp_path / "plain", chat_template=False)
    backend = TransformersBackend(str(path), max_new_tokens=256)
    prompt = "Classify: coffee 3.00"

    result = await backend.generate_json(prompt, Classification.model_json_schema())

    Classification.model_validate(result.data)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert result.input_tokens == len(tokenizer(prompt)["input_ids"])


async def test_generation_is_deterministic(backend: TransformersBackend, model_dir: Path) -> None:
    schema = Total.model_json_schema()

    first = await backend.generate_json(PROMPT, schema)
    again = await backend.generate_json(PROMPT, schema)
    other_instance = await TransformersBackend(str(model_dir)).generate_json(PROMPT, schema, max_new_tokens=1024)

    assert first.text == again.text == other_instance.text
    assert first.output_tokens == again.output_tokens == other_instance.output_tokens


async def test_without_the_constraint_the_random_model_does_not_write_json(model_dir: Path) -> None:
    backend = TransformersBackend(str(model_dir), constrained=False)

    with pytest.raises(ModelError, match="not valid JSON") as caught:
        await backend.generate_json(PROMPT, Classification.model_json_schema(), max_new_tokens=32)

    assert caught.value.retryable is False


async def test_running_out_of_max_new_tokens_mid_json_is_a_model_error(backend: TransformersBackend) -> None:
    with pytest.raises(ModelError, match="max_new_tokens=5 before the JSON was complete") as caught:
        await backend.generate_json(PROMPT, LineItems.model_json_schema(), max_new_tokens=5)

    assert caught.value.retryable is False
    assert caught.value.body is not None


async def test_a_missing_model_folder_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    backend = TransformersBackend(str(missing))

    with pytest.raises(ConfigurationError, match="model folder not found") as caught:
        await backend.load()

    assert str(missing) in str(caught.value)


async def test_a_folder_without_a_model_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot load model") as caught:
        await TransformersBackend(str(tmp_path)).generate_text("hi")

    assert str(tmp_path) in str(caught.value)


async def test_a_model_id_missing_from_the_cache_is_a_configuration_error_when_offline() -> None:
    backend = TransformersBackend("orchestrator-tests/no-such-model", local_files_only=True)

    with pytest.raises(ConfigurationError, match="orchestrator-tests/no-such-model"):
        await backend.load()


def test_max_new_tokens_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="max_new_tokens"):
        TransformersBackend("unused", max_new_tokens=0)


async def test_a_schema_lm_format_enforcer_cannot_handle_is_a_configuration_error(
    backend: TransformersBackend,
) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$", "maxLength": 4}},
        "required": ["code"],
    }

    with pytest.raises(ConfigurationError, match="lm-format-enforcer"):
        await backend.generate_json(PROMPT, schema)


async def test_generation_runs_in_a_worker_thread_while_the_event_loop_keeps_going(
    backend: TransformersBackend,
) -> None:
    await backend.load()
    in_model = anyio.Event()
    held = threading.Event()
    release = threading.Event()

    def hold_first_forward(module: Any, args: Any) -> None:
        if not held.is_set():
            held.set()
            anyio.from_thread.run_sync(in_model.set)  # fails if this runs on the event loop's thread
            release.wait(timeout=10)

    handle = backend.model.register_forward_pre_hook(hold_first_forward)
    heartbeats = 0
    results: list[Any] = []

    async def generate() -> None:
        results.append(await backend.generate_json(PROMPT, Classification.model_json_schema()))

    async def heartbeat(beats: int, done: anyio.Event) -> None:
        nonlocal heartbeats
        for _ in range(beats):
            await anyio.lowlevel.checkpoint()
            heartbeats += 1
        done.set()

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(generate)
                await in_model.wait()  # the generation is now held inside the model's forward pass
                beaten = anyio.Event()
                tg.start_soon(heartbeat, 5, beaten)
                await beaten.wait()
                assert heartbeats == 5 and not results  # the loop ran on while the model was mid-flight
                release.set()
    finally:
        release.set()
        handle.remove()

    Classification.model_validate(results[0].data)


async def test_cancelling_the_caller_stops_generation_at_the_next_token(
    backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await backend.load()
    in_model = anyio.Event()
    release = threading.Event()
    returned = threading.Event()
    forward_passes = 0
    generate = backend.model.generate

    def generate_and_tell(*args: Any, **kwargs: Any) -> Any:
        try:
            return generate(*args, **kwargs)
        finally:
            returned.set()

    monkeypatch.setattr(backend.model, "generate", generate_and_tell)

    def count_and_hold_the_first(module: Any, args: Any) -> None:
        nonlocal forward_passes
        forward_passes += 1
        if forward_passes == 1:
            anyio.from_thread.run_sync(in_model.set)
            release.wait(timeout=10)

    handle = backend.model.register_forward_pre_hook(count_and_hold_the_first)
    scope = anyio.CancelScope()

    async def generate_line_items() -> None:
        with scope:
            await backend.generate_json(PROMPT, LineItems.model_json_schema())  # about 400 tokens if left alone

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(generate_line_items)
                await in_model.wait()
                scope.cancel()
                await anyio.wait_all_tasks_blocked()  # the cancellation has reached the back-end
                release.set()
    finally:
        release.set()
        handle.remove()

    assert scope.cancelled_caught
    assert returned.is_set()  # the cancelled call waited for the model to be free
    assert forward_passes == 1  # and the model stopped right after the pass it was in
    # The lock was released once the model stopped: the back-end still works.
    Classification.model_validate((await backend.generate_json(PROMPT, Classification.model_json_schema())).data)
