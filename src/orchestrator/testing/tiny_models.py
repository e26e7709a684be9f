"""A tiny, randomly initialised causal language model, built on the spot: no hub, no download.

`build_tiny_causal_lm` writes a model folder that `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained` load like any real checkpoint (a Llama with two layers and a byte-level
BPE tokenizer trained here on a small JSON-flavoured corpus). It knows nothing, so its text is noise;
that is the point: whatever JSON comes out of it under constrained decoding is the decoder's doing.
It needs the `transformers` extra (torch, transformers, tokenizers).

    path = build_tiny_causal_lm(tmp_path / "tiny")
    backend = TransformersBackend(str(path))
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigurationError

__all__ = ["TINY_CHAT_TEMPLATE", "build_tiny_causal_lm"]

_BOS, _EOS, _PAD = "<|bos|>", "<|eos|>", "<|pad|>"
_ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""A Phi-3-like chat template: `<|role|>` header, content, `<|end|>`."""

_WORDS = (
    "name quantity price total label category amount currency vendor date items description "
    "receipt invoice food travel office other true false null yes no unknown milk bread coffee "
    "the a of and to in is for on with apple banana tax tip sum"
).split()


def _corpus() -> list[str]:
    """Deterministic lines that cover JSON punctuation, digits, letters, spaces and a few chat lines."""
    lines: list[str] = []
    for i, word in enumerate(_WORDS):
        other = _WORDS[(i * 7 + 3) % len(_WORDS)]
        number = (i * 37) % 1000
        lines.append(json.dumps({word: other, "n": number, "x": number / 8}))
        lines.append(json.dumps({"name": word, "quantity": i % 9 + 1, "price": round(number / 7, 2)}))
        lines.append(json.dumps([word, other, number, -i, None, True, False]))
        lines.append(f"<|user|>\nwhat is {word} {number}?<|end|>\n<|assistant|>\n{other} {i}.")
    lines.append("".join(chr(c) for c in range(32, 127)))
    lines.append('0123456789 -+.eE {}[]:,"\\ \n\t')
    return lines


def build_tiny_causal_lm(path: Path, *, seed: int = 0, chat_template: bool = True, vocab_size: int = 384) -> Path:
    """Build and save a tiny random causal LM and its tokenizer to `path`, and return `path`.

    The folder holds a two-layer Llama (hidden size 32, about 31k parameters, about 140 kB) and a
    byte-level BPE tokenizer, so every string can be encoded. It takes about 0.1 s on a CPU, once
    torch and transformers are imported.

    Args:
        path: Folder to write; created if missing.
        seed: Seed for the weights. The global torch RNG is left as it was.
        chat_template: Give the tokenizer a small Phi-3-like chat template; without one the back-end
            falls back to a plain prompt.
        vocab_size: Target vocabulary size of the BPE tokenizer (256 bytes plus merges and special tokens).

    Raises:
        ConfigurationError: torch, transformers or tokenizers is not installed.
    """
    try:
        # Typed as Any: these packages are only partly typed.
        torch: Any = importlib.import_module("torch")
        tok: Any = importlib.import_module("tokenizers")
        hf: Any = importlib.import_module("transformers")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            f'the tiny test model needs torch and transformers: pip install "orchestrator[transformers]" ({exc})'
        ) from exc
    pre_tokenizers = tok.pre_tokenizers

    path.mkdir(parents=True, exist_ok=True)

    bpe = tok.Tokenizer(tok.models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = tok.decoders.ByteLevel()
    trainer = tok.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[_BOS, _EOS, _PAD, *_ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    bos_id = bpe.token_to_id(_BOS)
    bpe.post_processor = tok.processors.TemplateProcessing(single=f"{_BOS} $A", special_tokens=[(_BOS, bos_id)])

    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=_BOS,
        eos_token=_EOS,
        pad_token=_PAD,
        additional_special_tokens=_ROLE_TOKENS,
    )
    if chat_template:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    config = hf.LlamaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=bos_id,
        eos_token_id=bpe.token_to_id(_EOS),
        pad_token_id=bpe.token_to_id(_PAD),
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf.LlamaForCausalLM(config)
    model.generation_config = hf.GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(path)
    return path
