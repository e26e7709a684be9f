"""Transformers back-end: a local Hugging Face causal LM whose JSON output is constrained to a schema.

torch, transformers and lm-format-enforcer are optional (`pip install "orchestrator[transformers]"`).
This module imports none of them at import time: the constructor only checks that they are installed,
and the model is imported and loaded on first use, in a worker thread. Every generation runs in a
worker thread too, one at a time per back-end (a lock created lazily), so the event loop never blocks.

Constrained decoding uses lm-format-enforcer's `JsonSchemaParser` and `TokenEnforcer`, applied through
a logits processor of our own: at each step every token that cannot continue JSON valid for the schema
is masked out, so even a random model can only write such JSON. (lm-format-enforcer's own transformers
integration imports `transformers.tokenization_utils`, which transformers 5 removed; the token enforcer
underneath it does not depend on transformers.) Decoding is greedy, hence deterministic.

Valid is not the same as finished: a weak model can go on inside a string or an array until
`max_new_tokens` runs out. Give strings a `maxLength` and arrays a `maxItems` (lm-format-enforcer caps
arrays at 20 items and runs of whitespace at 12 by default); numbers are capped here at 24 characters.

Errors: a missing extra, a missing model folder or an unsupported schema raise `ConfigurationError`;
running out of `max_new_tokens` before the JSON is complete, or output that does not parse, raise
`ModelError(retryable=False)` (greedy decoding would only say the same thing again).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from orchestrator.context import Usage
from orchestrator.embeddings import quiet_progress
from orchestrator.errors import ConfigurationError, ModelError

__all__ = ["ChatMessage", "GenerationResult", "Prompt", "TransformersBackend"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_INSTALL_HINT = 'pip install "orchestrator[transformers]"'

_MAX_NUMBER_CHARS = 24  # "-1.2345678901234567e-308" fits; more digits than a double holds are noise
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_CONTROL = re.compile("[\x00-\x1f]")  # never raw inside a JSON string
_NEVER_IN_JSON = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control characters that are not whitespace

ChatMessage = Mapping[str, str]
"""One chat message: ``{"role": "user", "content": "..."}``."""

Prompt = str | Sequence[ChatMessage]
"""A plain prompt, or chat messages for the tokenizer's chat template."""


@dataclass(frozen=True)
class GenerationResult:
    """What one generation produced.

    Attributes:
        text: The generated text, without the prompt and the end-of-sequence token (and, for JSON, without
            surrounding whitespace).
        data: `text` parsed as JSON (None from `generate_text`).
        input_tokens: Tokens in the prompt, after the chat template.
        output_tokens: Tokens the model generated, end-of-sequence included.
        constrained: Whether decoding was constrained to the schema.
    """

    text: str
    data: Any
    input_tokens: int
    output_tokens: int
    constrained: bool

    @property
    def usage(self) -> Usage:
        """This call as `Usage` (a local model costs nothing per token)."""
        return Usage(calls=1, input_tokens=self.input_tokens, output_tokens=self.output_tokens)


@dataclass
class _Loaded:
    """The loaded model and everything derived from it once."""

    torch: Any
    transformers: Any
    model: Any
    tokenizer: Any
    device: str
    eos_ids: list[int]
    pad_id: int
    vocab_size: int
    enforcer_data: Any = None  # lm-format-enforcer's TokenEnforcerTokenizerData, built on first constrained call


class TransformersBackend:
    """A local causal LM (Phi-3, Llama 3.2, ...) run with transformers, with schema-constrained JSON output.

    Example:
        backend = TransformersBackend("models/phi-3-mini")
        result = await backend.generate_json(messages, {"type": "object", ...})
        result.data  # parsed JSON, valid for the schema's structure
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        device: str | None = None,
        max_new_tokens: int = 512,
        constrained: bool = True,
        local_files_only: bool = False,
    ) -> None:
        """Check the dependencies and remember the settings; nothing is loaded until first use.

        Args:
            model_name_or_path: A local model folder, or a Hugging Face model id. An id is looked up in the
                local cache first and downloaded only if it is not there (and `local_files_only` is False).
            device: Torch device, e.g. ``"cpu"`` or ``"cuda:0"``; None picks cuda when available, else cpu.
            max_new_tokens: Default cap on generated tokens per call.
            constrained: Constrain `generate_json` output to the schema with lm-format-enforcer. Without it
                the model's raw output is parsed, and may fail.
            local_files_only: Never contact the Hugging Face hub.

        Raises:
            ConfigurationError: torch, transformers or (when constrained) lm-format-enforcer is missing,
                or `max_new_tokens` is not positive.
        """
        required = ["torch", "transformers"] + (["lmformatenforcer"] if constrained else [])
        missing = [name for name in required if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigurationError(
                f"the transformers back-end needs {', '.join(missing)}: {_INSTALL_HINT}"
                + ("" if missing != ["lmformatenforcer"] else " (or pass constrained=False)")
            )
        self.model_name_or_path = model_name_or_path
        self.max_new_tokens = _check_max_new_tokens(max_new_tokens)
        self.constrained = constrained
        self.local_files_only = local_files_only
        self._requested_device = device
        self._loaded: _Loaded | None = None
        self._lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"TransformersBackend({self.model_name_or_path!r}, device={self.device!r})"

    @property
    def device(self) -> str | None:
        """The device the model runs on: the one asked for, or the one picked at load time (None before)."""
        return self._loaded.device if self._loaded is not None else self._requested_device

    @property
    def model(self) -> Any:
        """The loaded transformers model, or None before the first call or `load()`."""
        return self._loaded.model if self._loaded is not None else None

    async def load(self) -> None:
        """Load the tokenizer and model now (otherwise the first generation does it).

        Raises:
            ConfigurationError: The model folder does not exist, or the model cannot be loaded from it.
        """
        async with self._get_lock():
            await self._ensure_loaded()

    async def generate_json(
        self, prompt: Prompt, schema: Mapping[str, Any], *, max_new_tokens: int | None = None
    ) -> GenerationResult:
        """Generate JSON for `schema` (a JSON Schema) by greedy decoding, constrained unless disabled.

        Put the instructions and, ideally, the schema in the prompt too: the constraint guarantees the
        form, the prompt has to bring the content.

        Args:
            prompt: A plain prompt, or chat messages; the tokenizer's chat template is used when it has one.
            schema: JSON Schema of the output.
            max_new_tokens: Cap for this call; defaults to the back-end's.

        Returns:
            The result, with `data` the parsed JSON.

        Raises:
            ConfigurationError: The model cannot be loaded, or lm-format-enforcer cannot handle the schema.
            ModelError: Decoding stopped before the JSON was complete (`max_new_tokens`), or, unconstrained,
                the output is not JSON. Never retryable: greedy decoding repeats itself.
        """
        limit = self.max_new_tokens if max_new_tokens is None else _check_max_new_tokens(max_new_tokens)
        schema_dict = dict(schema)
        async with self._get_lock():
            loaded = await self._ensure_loaded()
            return await _run_stoppable(partial(self._generate_json_sync, loaded, prompt, schema_dict, limit))

    async def generate_text(self, prompt: Prompt, max_new_tokens: int | None = None) -> GenerationResult:
        """Generate free text by greedy decoding (`data` is None).

        Raises:
            ConfigurationError: The model cannot be loaded.
        """
        limit = self.max_new_tokens if max_new_tokens is None else _check_max_new_tokens(max_new_tokens)
        async with self._get_lock():
            loaded = await self._ensure_loaded()
            return await _run_stoppable(partial(self._generate_text_sync, loaded, prompt, limit))

    # -- internals -------------------------------------------------------------------------------------

    def _get_lock(self) -> anyio.Lock:
        # Created on first use, inside the running event loop.
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def _ensure_loaded(self) -> _Loaded:
        if self._loaded is None:
            # Loading cannot be interrupted: a cancelled caller waits for it, and the model is kept.
            self._loaded = await anyio.to_thread.run_sync(self._load_sync)
        return self._loaded

    def _resolve_source(self) -> tuple[str, bool]:
        """Where to load from, and whether to stay off the network."""
        name = self.model_name_or_path
        path = Path(name).expanduser()
        if path.is_dir():
            return str(path), True
        if path.exists():
            raise ConfigurationError(f"model path {str(path)!r} is a file; expected a model folder")
        # A hub id is "name" or "org/name"; anything else is meant as a path.
        if path.is_absolute() or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1:
            raise ConfigurationError(
                f"model folder not found: {str(path)!r} (expected a folder with config.json, tokenizer and weights)"
            )
        return name, self.local_files_only

    def _load_sync(self) -> _Loaded:
        started = time.perf_counter()
        torch, transformers = _require("torch"), _require("transformers")
        source, local_only = self._resolve_source()

        def from_pretrained(local: bool) -> tuple[Any, Any]:
            with quiet_progress():
                tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local)
                model = transformers.AutoModelForCausalLM.from_pretrained(source, local_files_only=local, dtype="auto")
            return tokenizer, model

        try:
            try:
                tokenizer, model = from_pretrained(True)
            except OSError:
                if local_only:
                    raise
                tokenizer, model = from_pretrained(False)  # not in the cache: ask the hub
        except (OSError, ValueError) as exc:
            where = "the folder" if Path(source).is_dir() else "the Hugging Face cache or hub"
            hint = "" if local_only else "; to stay offline pass a model folder or local_files_only=True"
            raise ConfigurationError(f"cannot load model {source!r} from {where}: {exc}{hint}") from exc

        device = self._requested_device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model.to(device)
        except (RuntimeError, AssertionError) as exc:  # torch asserts when built without CUDA
            raise ConfigurationError(f"cannot run model {source!r} on device {device!r}: {exc}") from exc
        model.eval()

        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else [int(i) for i in eos or []]
        if not eos_ids:
            raise ConfigurationError(f"model {source!r} has no end-of-sequence token; cannot tell when it is done")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
        vocab_size = min(len(tokenizer), int(model.get_output_embeddings().weight.shape[0]))
        logger.info("loaded %s on %s in %.1fs", source, device, time.perf_counter() - started)
        return _Loaded(torch, transformers, model, tokenizer, device, eos_ids, pad_id, vocab_size)

    def _encode(self, loaded: _Loaded, prompt: Prompt) -> tuple[Any, Any]:
        tokenizer = loaded.tokenizer
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            encoded = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        else:
            if not isinstance(prompt, str):
                prompt = "".join(f"{m['role']}: {m['content']}\n" for m in prompt) + "assistant: "
            encoded = tokenizer(prompt, return_tensors="pt")
        return encoded["input_ids"].to(loaded.device), encoded["attention_mask"].to(loaded.device)

    def _generate_sync(
        self,
        loaded: _Loaded,
        prompt: Prompt,
        max_new_tokens: int,
        mask: Callable[[Any, Any], Any] | None,
        stop: threading.Event,
    ) -> tuple[list[int], int, bool]:
        """Greedy generation. Returns the new token ids, the prompt length, and whether it ended on EOS."""
        input_ids, attention_mask = self._encode(loaded, prompt)
        config = loaded.transformers.GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            # Neutral values, so a checkpoint's sampling defaults neither apply nor warn.
            temperature=1.0,
            top_k=50,
            top_p=1.0,
            repetition_penalty=1.0,
            eos_token_id=loaded.eos_ids,
            pad_token_id=loaded.pad_id,
        )
        processors = loaded.transformers.LogitsProcessorList([mask] if mask is not None else [])
        stopping = loaded.transformers.StoppingCriteriaList([_StopWhenSet(loaded.torch, stop)])
        try:
            with loaded.torch.inference_mode():
                output = loaded.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    generation_config=config,
                    logits_processor=processors,
                    stopping_criteria=stopping,
                )
        except RuntimeError as exc:
            raise ModelError(f"generation failed on {loaded.device}: {exc}") from exc
        new_ids = [int(i) for i in output[0, input_ids.shape[1] :].tolist()]
        ended = bool(new_ids) and new_ids[-1] in loaded.eos_ids
        logger.debug("generated %d tokens (%s)", len(new_ids), "eos" if ended else "stopped")
        return new_ids, int(input_ids.shape[1]), ended

    def _generate_text_sync(
        self, loaded: _Loaded, prompt: Prompt, max_new_tokens: int, stop: threading.Event
    ) -> GenerationResult:
        ids, input_tokens, _ = self._generate_sync(loaded, prompt, max_new_tokens, None, stop)
        text = loaded.tokenizer.decode(_strip_end(ids, loaded), skip_special_tokens=True)
        return GenerationResult(text, None, input_tokens, len(ids), constrained=False)

    def _generate_json_sync(
        self, loaded: _Loaded, prompt: Prompt, schema: dict[str, Any], max_new_tokens: int, stop: threading.Event
    ) -> GenerationResult:
        lmfe = _require("lmformatenforcer") if self.constrained else None
        mask = _SchemaMask(loaded.torch, _token_enforcer(lmfe, loaded, schema)) if lmfe is not None else None
        try:
            ids, input_tokens, ended = self._generate_sync(loaded, prompt, max_new_tokens, mask, stop)
        except Exception as exc:
            if lmfe is not None and isinstance(exc, lmfe.LMFormatEnforcerException):
                raise ConfigurationError(f"lm-format-enforcer cannot constrain this schema: {exc}") from exc
            raise
        # Special tokens never pass the mask, so skipping them hides nothing the enforcer saw.
        text = loaded.tokenizer.decode(_strip_end(ids, loaded), skip_special_tokens=True).strip()
        try:
            data = _parse_json(text, strict=self.constrained)
        except ValueError as exc:
            started = self.constrained or "{" in text or "[" in text
            if started and not ended and len(ids) >= max_new_tokens:
                raise ModelError(
                    f"the model used all max_new_tokens={max_new_tokens} before the JSON was complete; "
                    f"raise max_new_tokens or ask for less (output so far: {_clip(text)!r})",
                    body=text,
                ) from exc
            raise ModelError(f"the model's output is not valid JSON ({exc}): {_clip(text)!r}", body=text) from exc
        return GenerationResult(text, data, input_tokens, len(ids), constrained=self.constrained)


def _token_enforcer(lmfe: Any, loaded: _Loaded, schema: dict[str, Any]) -> Any:
    if loaded.enforcer_data is None:
        loaded.enforcer_data = _build_enforcer_data(lmfe, loaded)
    try:
        parser = lmfe.JsonSchemaParser(schema)
    except Exception as exc:  # lm-format-enforcer reads the schema into its own pydantic model
        raise ConfigurationError(f"lm-format-enforcer cannot use this JSON schema: {exc}") from exc
    return lmfe.TokenEnforcer(loaded.enforcer_data, _NumberLengthCap(parser))


class _Abandoned(Exception):
    """Raised in a worker thread whose caller has already gone."""


async def _run_stoppable(work: Callable[[threading.Event], _T]) -> _T:
    """Run `work(stop)` in a worker thread. If the caller is cancelled, set `stop` and wait for `work` to return.

    Generation checks `stop` after every token, so a step timeout takes effect within a token, and the
    caller's lock is held until the model is free again.
    """
    stop = threading.Event()
    finished = threading.Event()
    state = threading.Lock()
    started = False

    def run() -> _T:
        nonlocal started
        with state:
            if stop.is_set():
                raise _Abandoned  # the caller was cancelled before this thread began; nobody waits for it
            started = True
        try:
            return work(stop)
        finally:
            finished.set()

    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        with state:
            stop.set()
            running = started
        if running:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
        raise


class _StopWhenSet:
    """Stopping criterion: every sequence is done once the event is set."""

    def __init__(self, torch: Any, event: threading.Event) -> None:
        self._torch = torch
        self._event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        return self._torch.full(
            (input_ids.shape[0],), self._event.is_set(), dtype=self._torch.bool, device=input_ids.device
        )


class _SchemaMask:
    """Logits processor: every token the enforcer does not allow next gets -inf."""

    def __init__(self, torch: Any, enforcer: Any) -> None:
        self._torch = torch
        self._enforcer = enforcer

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        mask = self._torch.full_like(scores, float("-inf"))
        for row, sequence in enumerate(input_ids.tolist()):
            allowed = self._enforcer.get_allowed_tokens(sequence).allowed_tokens
            mask[row, allowed] = 0
        return scores + mask


class _NumberLengthCap:
    """Wraps lm-format-enforcer's JSON parser so that no number runs past `_MAX_NUMBER_CHARS` characters.

    JSON numbers have no length limit, and a weak model can repeat digits until `max_new_tokens` runs out.
    Once a number is this long and could end, only what may follow a number is allowed. Where strings
    are is tracked from the characters themselves, so nothing inside a string is ever cut.
    """

    def __init__(self, inner: Any, *, in_string: bool = False, escaped: bool = False, run: int = 0) -> None:
        self._inner = inner
        self._in_string = in_string
        self._escaped = escaped
        self._run = run  # characters of the number being written, 0 when not in a number

    @property
    def config(self) -> Any:
        return self._inner.config

    @config.setter
    def config(self, value: Any) -> None:
        self._inner.config = value

    def add_character(self, character: str) -> _NumberLengthCap:
        inner = self._inner.add_character(character)
        if self._in_string:
            closes = character == '"' and not self._escaped
            escaped = character == "\\" and not self._escaped
            return _NumberLengthCap(inner, in_string=not closes, escaped=escaped)
        if character == '"':
            return _NumberLengthCap(inner, in_string=True)
        run = self._run + 1 if character in _NUMBER_CHARS else 0
        return _NumberLengthCap(inner, run=run)

    def _capped(self) -> bool:
        return self._run >= _MAX_NUMBER_CHARS and not self._in_string

    def get_allowed_characters(self) -> str:
        allowed = str(self._inner.get_allowed_characters())
        if self._capped():
            # Where the number cannot end yet ("1." or "1e-") nothing else is allowed: let it finish.
            return "".join(c for c in allowed if c not in _NUMBER_CHARS) or allowed
        return allowed

    def can_end(self) -> bool:
        return bool(self._inner.can_end())

    def shortcut_key(self) -> Any:
        return self._inner.shortcut_key()

    def cache_key(self) -> Any:
        key = self._inner.cache_key()
        return None if key is None else ("number-cap", key, self._in_string, self._escaped, self._capped())


def _build_enforcer_data(lmfe: Any, loaded: _Loaded) -> Any:
    """lm-format-enforcer's per-tokenizer tables: each regular token's text, and whether it starts a word.

    The same computation as lm-format-enforcer's transformers integration (which fails to import under
    transformers 5), except that it leaves out tokens no JSON text can contain: fragments of a multi-byte
    character (a weak model can emit them forever without the parser moving) and control characters.
    Takes a few seconds for a 128k vocabulary, so it is built once per back-end.
    """
    tokenizer = loaded.tokenizer
    special = set(tokenizer.all_special_ids)
    special.update(i for i, token in tokenizer.added_tokens_decoder.items() if getattr(token, "special", False))
    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    regular: list[tuple[int, str, bool]] = []
    for token_id in range(loaded.vocab_size):
        if token_id in special:
            continue
        # Decoding after "0" keeps a leading space that decoding alone would drop (SentencePiece word starts).
        after_zero = tokenizer.decode([zero, token_id])[1:]
        alone = tokenizer.decode([token_id])
        if "\ufffd" in alone or _NEVER_IN_JSON.search(alone):
            continue
        regular.append((token_id, after_zero, len(after_zero) > len(alone)))

    def decode(tokens: list[int]) -> str:
        return str(tokenizer.decode(tokens)).rstrip("\ufffd")  # drop half of a multi-byte character

    data = lmfe.TokenEnforcerTokenizerData(regular, decode, loaded.eos_ids, False, loaded.vocab_size)
    # lm-format-enforcer keeps tokens with a raw tab (or other control character) among those allowed
    # inside strings, which JSON forbids; rebuild that table without them.
    freetext = _require("lmformatenforcer.tokenizerprefixtree").JsonFreetextTokenCache(False, loaded.vocab_size)
    for token_id, text, _ in regular:
        if not _CONTROL.search(text):
            freetext.add_token(text, token_id)
    freetext.freeze()
    data.tokenizer_tree.json_freetext_tokens = freetext
    return data


def _strip_end(ids: list[int], loaded: _Loaded) -> list[int]:
    end = len(ids)
    while end and (ids[end - 1] in loaded.eos_ids or ids[end - 1] == loaded.pad_id):
        end -= 1
    return ids[:end]


def _parse_json(text: str, *, strict: bool) -> Any:
    """Parse the output; unconstrained output may wrap the JSON in prose or a code fence."""
    try:
        return json.loads(text)
    except ValueError:
        if strict:
            raise
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON object or array in the output")
    data, _ = json.JSONDecoder().raw_decode(text, min(starts))
    return data


def _require(module: str) -> Any:
    """Import an optional dependency, typed as Any (these packages are not fully typed)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"the transformers back-end needs {module.partition('.')[0]}: {_INSTALL_HINT}"
        ) from exc


def _check_max_new_tokens(value: int) -> int:
    if value < 1:
        raise ConfigurationError(f"max_new_tokens must be at least 1, got {value}")
    return value


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
