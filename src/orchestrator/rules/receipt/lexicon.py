"""OCR repair for the receipt header: look-alike letters and digits, and a word list learned from labels.

OCR misreads the seller block more than anything else on a receipt (``San Bhd`` for ``SDN BHD``, ``L0T``
for ``LOT``, ``551OO`` for ``55100``, ``KUALA LUMPLR``), and a company or address with one wrong letter is
a wrong field. Before the rules read the header (the first :data:`~._header.HEADER_LINES` lines), each
of its tokens (runs of ASCII letters and digits) is repaired in two steps:

1. **Look-alike characters.** A token that is mostly digits and whose letters all look like digits
   (``O D Q`` -> 0, ``I l`` -> 1, ``S`` -> 5, ``B`` -> 8, ``Z`` -> 2) becomes all digits: ``52oo0`` ->
   ``52000``. A word with a look-alike digit inside it (``0 1 5 8``) gets the letter back: ``B1vd`` ->
   ``Blvd``, ``P1easant`` -> ``Pleasant``; where the digit starts the token (``5dn``) or the token is
   short (``L0T``, ``N0``) only when the result is a known word. Ordinals (``3RD``) and codes with
   fewer than two letters per digit (``U13``, ``SS15``) are left alone.
2. **The lexicon.** A :class:`Lexicon` holds the words (and word pairs) that the labelled companies and
   addresses of at least ``min_vendors`` different vendors use: company forms (``SDN BHD``,
   ``ENTERPRISE``, ``TRADING``), street words and places (``JALAN``, ``TAMAN``, ``KUALA LUMPUR``), plus
   the keyword rules' own words (:func:`rule_words`: street words, document titles, month names; a
   token is corrected into one of these only by a single look-alike swap, ``INYOICE`` -> ``INVOICE``). A
   token that is not a known word is replaced by the known word nearest to it, when that one is near
   enough for the token's length and no other known word is as near (distance counts a swap between
   look-alike letters, ``I``/``L``, ``O``/``D``, ``M``/``N``..., as half an edit). A short unknown token
   is corrected only into a known pair with its neighbour (``San Bhd`` -> ``SDN BHD``, as ``SDN BHD`` is a
   known pair), and a long one may be split into two known words or pairs (``MALAYSIASONBHD`` ->
   ``MALAYSIASDNBHD``). A known word is never changed, so words the lexicon holds are safe and an
   unknown vendor's name is changed only where it is one look-alike letter away from a common word.

The lexicon is learned from labels only (``python -m orchestrator.evaluation.train_lexicon``; the vendor
held-out evaluation learns one per fold from the other folds). Candidate words are found with
`RapidFuzz <https://pypi.org/project/rapidfuzz/>`_'s Levenshtein search (C++, fast enough to ask for every
header token of every receipt); the look-alike weighting that ranks them is here.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

from pydantic import BaseModel, Field, ValidationError

__all__ = ["Lexicon", "learn_lexicon", "repair_header", "repair_line", "rule_words", "shipped_lexicon", "words_of"]

_LEXICON_FILE = "receipt_lexicon.json"
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")
_ORDINAL_RE = re.compile(r"\d+(?:ST|ND|RD|TH)", re.IGNORECASE)
_STRAY_GLYPH_RE = re.compile(r"(?:(?<=\s)|^)[^\x00-\x7f](?=\s|$)")

# Letters that OCR confuses with digits, and back.
_AS_DIGIT = {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "S": "5", "B": "8", "Z": "2"}
_AS_UPPER = {"0": "O", "1": "I", "5": "S", "8": "B"}
_AS_LOWER = {"0": "o", "1": "l", "5": "s", "8": "b"}
# Groups of upper-case letters (and digits) that look alike in receipt fonts: a swap inside one costs 0.5.
_LOOK_ALIKE = ("O0DQCGU", "IL1J!|", "IT", "S5", "B8R", "Z2", "G6", "MNHW", "UVY", "EF", "CE", "PR", "AR")
_SIMILAR = frozenset((a, b) for group in _LOOK_ALIKE for a in group for b in group if a != b)
_SWAP_COST = 0.5
PAIR_MIN_VENDORS = 5
"""A short token is corrected into a pair only when this many vendors print the pair (``SDN BHD``)."""
COMMON_VENDORS = 5
KEYWORD_MIN_LENGTH = 5
"""A token shorter than this is never corrected into a rule keyword (``MALL`` is one swap from ``MAIL``)."""
"""A word this many vendors use may be reached from a token one more look-alike swap away."""


class Lexicon(BaseModel):
    """Words and word pairs (upper case) with how many vendors' labels use each."""

    trained_on: str = Field(default="", description="what the lexicon was learned from")
    min_vendors: int = Field(default=2, ge=1)
    words: dict[str, int] = Field(default_factory=dict)
    pairs: dict[str, int] = Field(default_factory=dict, description='"WORD1 WORD2" -> vendors')
    keywords: list[str] = Field(default_factory=list, description="the keyword rules' own words (rule_words)")

    @functools.cached_property
    def _keywords(self) -> frozenset[str]:
        return frozenset(self.keywords)

    @functools.cached_property
    def _by_length(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = defaultdict(list)
        for word in self.words:
            out[len(word)].append(word)
        return out

    @functools.cached_property
    def _joined(self) -> dict[str, int]:
        """Pairs written as one word (``SDNBHD``), for tokens OCR ran together."""
        return {pair.replace(" ", ""): count for pair, count in self.pairs.items()}

    @functools.cached_property
    def _pair_after(self) -> dict[str, list[str]]:
        """Second word -> the first words of known pairs."""
        return self._pair_index(key=1)

    @functools.cached_property
    def _pair_before(self) -> dict[str, list[str]]:
        """First word -> the second words of known pairs."""
        return self._pair_index(key=0)

    def _pair_index(self, key: int) -> dict[str, list[str]]:
        """Each pair's word at `key` (0 first, 1 second) -> the other words it is paired with."""
        out: dict[str, list[str]] = defaultdict(list)
        for pair in self.pairs:
            words = pair.split(" ", 1)
            out[words[key]].append(words[1 - key])
        return out

    def knows(self, word: str) -> bool:
        """Whether `word` (any case) is a known word or a known pair run together."""
        upper = word.upper()
        return upper in self.words or upper in self._joined or upper in self._keywords

    def nearest(self, token: str, budget: float, common_budget: float | None = None) -> tuple[str, float] | None:
        """The known word (or run-together pair) nearest to `token`, if exactly one is nearest.

        A word must be within `budget`, or `common_budget` for a word :data:`COMMON_VENDORS` or more vendors
        use (a common word is the likelier reading of a near miss).
        """
        from rapidfuzz.distance import Levenshtein

        upper = token.upper()
        wide = max(budget, common_budget or 0.0)
        edits = int(wide + 0.5) if wide >= 1 else 1
        pool: list[tuple[str, int]] = []
        for length in range(len(upper) - edits, len(upper) + edits + 1):
            pool.extend((word, self.words[word]) for word in self._by_length.get(length, ()))
        pool.extend((word, count) for word, count in self._joined.items() if abs(len(word) - len(upper)) <= edits)
        if len(upper) >= KEYWORD_MIN_LENGTH:
            # A rule keyword is reached by one look-alike swap only ("INYOICE"), never by a real edit.
            pool.extend((word, 0) for word in self._keywords if len(word) == len(upper) and word not in self.words)
        best: list[tuple[float, int, str]] = []
        for word, count in pool:
            if Levenshtein.distance(upper, word, score_cutoff=edits) > edits:
                continue
            cost = weighted_distance(upper, word)
            allowed = _SWAP_COST if count == 0 else wide if count >= COMMON_VENDORS else budget
            if cost <= allowed:
                best.append((cost, count, word))
        if not best:
            return None
        best.sort(key=lambda entry: (entry[0], -entry[1]))
        if len(best) > 1 and best[1][0] == best[0][0] and best[1][1] == best[0][1]:
            return None  # two words as near and as common: no way to choose
        return best[0][2], best[0][0]

    def pair_fix(self, token: str, before: str | None, after: str | None) -> str | None:
        """A short unknown `token` corrected into a known pair with the word before or after it."""
        from rapidfuzz.distance import Levenshtein

        upper = token.upper()
        candidates: list[tuple[float, int, str]] = []
        for neighbour, firsts, order in (
            (after, self._pair_after.get(after or "", []), "first"),
            (before, self._pair_before.get(before or "", []), "second"),
        ):
            if neighbour is None:
                continue
            for word in firsts:
                if (
                    Levenshtein.distance(upper, word, score_cutoff=1) > 1
                    or self.pairs[f"{word} {neighbour}" if order == "first" else f"{neighbour} {word}"]
                    < PAIR_MIN_VENDORS
                ):
                    continue
                key = f"{word} {neighbour}" if order == "first" else f"{neighbour} {word}"
                candidates.append((weighted_distance(upper, word), self.pairs[key], word))
        if not candidates:
            return None
        candidates.sort(key=lambda entry: (entry[0], -entry[1]))
        if len(candidates) > 1 and candidates[1][:2] == candidates[0][:2] and candidates[1][2] != candidates[0][2]:
            return None
        return candidates[0][2]


def weighted_distance(a: str, b: str) -> float:
    """Edit distance where swapping look-alike characters (``I``/``L``, ``O``/``D``...) costs half an edit."""
    previous = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        current = [float(i)] + [0.0] * len(b)
        for j, cb in enumerate(b, 1):
            swap = 0.0 if ca == cb else _SWAP_COST if (ca, cb) in _SIMILAR else 1.0
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + swap)
        previous = current
    return previous[-1]


def _budget(length: int) -> float:
    """How far a token of this length may be from the word it is corrected to."""
    if length <= 3:
        return 0.0  # too short to tell alone: only a known pair with a neighbour corrects it
    if length <= 5:
        return _SWAP_COST
    if length <= 8:
        return 1.0
    return 1.5


def _common_budget(length: int) -> float:
    """:func:`_budget` for a common word: one look-alike swap more, for tokens of six letters or more.

    Shorter tokens have too many real words near them (``RAYA`` is one swap from ``JAYA``).
    """
    return _budget(length) + _SWAP_COST if length >= 6 else _budget(length)


def words_of(text: str) -> list[str]:
    """The upper-case tokens (letters and digits) of a label text."""
    return [token.upper() for token in _TOKEN_RE.findall(text)]


def rule_words() -> set[str]:
    """The keyword rules' own vocabulary: street words, business kinds, header titles and stops, month names.

    They are known words whatever the labels say: ``INYOICE`` is read as ``INVOICE`` and then the rules see
    a document title, not a company name; ``0CT`` is read as ``OCT`` and then the date is found.
    """
    from orchestrator.rules.receipt._dates import month_names
    from orchestrator.rules.receipt._header import header_words

    return {word for word in header_words() | month_names() if word.isascii() and word.isalpha() and len(word) >= 3}


def learn_lexicon(vendors: Mapping[str, Iterable[str]], *, min_vendors: int = 2, trained_on: str = "") -> Lexicon:
    """The words and pairs that at least `min_vendors` vendors' label texts use.

    Args:
        vendors: vendor -> its label texts (company names, addresses, store names).
        min_vendors: how many vendors must use a word for it to count as a known word: a word only one
            vendor uses is that vendor's own name and says nothing about the next vendor.
        trained_on: what the texts came from (kept in the file).
    """
    word_vendors: dict[str, set[str]] = defaultdict(set)
    pair_vendors: dict[str, set[str]] = defaultdict(set)
    for vendor, texts in vendors.items():
        for text in texts:
            tokens = [t for t in words_of(text) if t.isalpha() and len(t) >= 2]
            for token in tokens:
                word_vendors[token].add(vendor)
            for first, second in zip(tokens, tokens[1:], strict=False):
                pair_vendors[f"{first} {second}"].add(vendor)
    return Lexicon(
        trained_on=trained_on,
        min_vendors=min_vendors,
        keywords=sorted(rule_words()),
        words={w: len(v) for w, v in sorted(word_vendors.items()) if len(v) >= min_vendors},
        pairs={p: len(v) for p, v in sorted(pair_vendors.items()) if len(v) >= min_vendors},
    )


@functools.cache
def shipped_lexicon() -> Lexicon | None:
    """The lexicon shipped with the package, or None when the file is missing or unreadable."""
    try:
        raw = resources.files("orchestrator.rules").joinpath("data", _LEXICON_FILE).read_text(encoding="utf-8")
        return Lexicon.model_validate(json.loads(raw))
    except (OSError, ValueError, ValidationError):
        return None


def _like(original: str, word: str) -> str:
    """`word` in the case style of `original`."""
    if original.isupper():
        return word.upper()
    if original.islower():
        return word.lower()
    return word.capitalize()


def _look_alike(token: str, lexicon: Lexicon) -> str:
    """Step 1: digits that are letters, letters that are digits."""
    digits = sum(ch.isdigit() for ch in token)
    letters = len(token) - digits
    if not digits or not letters or _ORDINAL_RE.fullmatch(token):
        return token
    if digits >= 3 and digits >= 0.6 * len(token) and all(ch.isdigit() or ch in _AS_DIGIT for ch in token):
        # A letter at either end may be a real unit or block letter (``044B``, ``S117``), except O.
        edges = (token[0], token[-1])
        if all(ch.isdigit() or ch in "Oo" for ch in edges):
            return "".join(_AS_DIGIT.get(ch, ch) for ch in token)
        return token
    if letters < digits or any(ch.isdigit() and ch not in _AS_UPPER for ch in token):
        return token
    out = []
    for i, ch in enumerate(token):
        if ch.isdigit():
            near = token[max(0, i - 1) : i + 2]
            table = _AS_LOWER if any(c.islower() for c in near) else _AS_UPPER
            ch = table[ch]
        out.append(ch)
    fixed = "".join(out)
    interior = not token[0].isdigit() and not token[-1].isdigit()
    if lexicon.knows(fixed) or (interior and letters >= 3 and letters >= 2 * digits):
        return fixed
    if token[0] == "0" and len(token) >= 4 and token[1:].isalpha() and token[1:].islower():
        return "O" + token[1:]  # no number starts with 0 and runs on in small letters: "0xnard"
    return token


def _split_fix(token: str, lexicon: Lexicon) -> str | None:
    """A long unknown token as two known words or pairs run together, with at most one of them corrected."""
    upper = token.upper()
    best: tuple[float, str] | None = None
    for cut in range(2, len(upper) - 1):
        parts: list[tuple[str, float]] = []
        for part in (upper[:cut], upper[cut:]):
            if lexicon.knows(part):
                parts.append((part, 0.0))
                continue
            if len(part) < 4:
                break
            near = lexicon.nearest(part, _budget(len(part)), _common_budget(len(part)))
            if near is None:
                break
            parts.append(near)
        if len(parts) != 2:
            continue
        cost = parts[0][1] + parts[1][1]
        if 0 < cost <= _budget(len(upper)) and (best is None or cost < best[0]):
            best = (cost, parts[0][0] + parts[1][0])
    return _like(token, best[1]) if best is not None else None


def repair_line(line: str, lexicon: Lexicon | None) -> str:
    """One header line with look-alike characters and near-miss words repaired (see the module docstring)."""
    if lexicon is None:
        return line
    if sum(ch.isascii() and ch.isalpha() for ch in line) >= 3:
        # A lone glyph of another script beside Latin text is a logo or a smudge read as a letter ("开 JAWED").
        line = _STRAY_GLYPH_RE.sub(lambda m: "" if unicodedata.category(m.group()) == "Lo" else m.group(), line).strip()
    matches = list(_TOKEN_RE.finditer(line))
    if not matches:
        return line
    tokens = [_look_alike(m.group(), lexicon) for m in matches]
    for i, token in enumerate(tokens):
        if not token.isalpha() or lexicon.knows(token):
            continue
        fixed: str | None = None
        if len(token) >= 4:
            near = lexicon.nearest(token, _budget(len(token)), _common_budget(len(token)))
            if near is not None:
                fixed = _like(token, near[0])
        if fixed is None and 2 <= len(token) <= 5:
            before = tokens[i - 1].upper() if i > 0 else None
            after = tokens[i + 1].upper() if i + 1 < len(tokens) else None
            word = lexicon.pair_fix(token, before, after)
            fixed = _like(token, word) if word is not None else None
        if fixed is None and len(token) >= 8:
            fixed = _split_fix(token, lexicon)
        if fixed is not None:
            tokens[i] = fixed
    out: list[str] = []
    end = 0
    for match, token in zip(matches, tokens, strict=True):
        out.append(line[end : match.start()])
        out.append(token)
        end = match.end()
    out.append(line[end:])
    return "".join(out)


def repair_header(lines: Sequence[str], lexicon: Lexicon | None, depth: int) -> list[str]:
    """The first `depth` lines repaired with :func:`repair_line`; the rest as they are."""
    if lexicon is None:
        return list(lines)
    return [repair_line(line, lexicon) if i < depth else line for i, line in enumerate(lines)]
