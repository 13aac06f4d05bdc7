"""Text -> index terms: folded, hyphen-split, stop words out, Snowball-stemmed.

A document becomes its content words (stemmed unigrams) and the bigrams of
adjacent content words, so a multi-word keyword is matched as a phrase. Words
joined by a hyphen also give their joined form (``sub-quadratic`` ->
``sub``, ``quadratic``, ``subquadrat``), so ``subquadratic`` and
``sub-quadratic`` meet. Columns are stable hashes of the terms: the index needs
no vocabulary file and grows without renumbering.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable
from functools import lru_cache
from itertools import pairwise

import Stemmer

from digestbot.ranking.stopwords import STOP_WORDS

N_COLUMNS = 1 << 22  # hashed term space
TOKENIZER_VERSION = 3  # bump when the analysis changes: persisted indexes are rebuilt

_WORD = re.compile(r"[a-z0-9]+(?:[-'/][a-z0-9]+)*")
_STEMMER = Stemmer.Stemmer("english")

# Acronyms a researcher writes either way. Each is expanded both ways at query
# time only (documents are indexed as written), and only where the short form is
# unambiguous in machine-learning text.
ACRONYMS: dict[str, str] = {
    "ssm": "state space model",
    "llm": "large language model",
    "vlm": "vision language model",
    "mllm": "multimodal large language model",
    "sae": "sparse autoencoder",
    "kd": "knowledge distillation",
    "ssl": "self-supervised learning",
    "mim": "masked image modeling",
    "jepa": "joint embedding predictive architecture",
    "moe": "mixture of experts",
    "vit": "vision transformer",
    "dit": "diffusion transformer",
    "nas": "neural architecture search",
    "rl": "reinforcement learning",
    "rlhf": "reinforcement learning from human feedback",
    "peft": "parameter efficient fine-tuning",
    "lora": "low-rank adaptation",
    "ptq": "post-training quantization",
    "qat": "quantization-aware training",
    "inr": "implicit neural representation",
    "gnn": "graph neural network",
    "t2i": "text-to-image",
    "kv": "key value",
    "icl": "in-context learning",
    "xai": "explainable ai",
}


_ACRONYM_KEYS: list[tuple[str, str, str]] = []


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


_TOKEN_CACHE: dict[str, tuple[tuple[str, ...], str | None]] = {}
_TOKEN_CACHE_MAX = 500_000


def _analyse_token(raw: str) -> tuple[tuple[str, ...], str | None]:
    """A raw token -> its stemmed content parts and, when hyphenated, its joined stem."""
    hit = _TOKEN_CACHE.get(raw)
    if hit is not None:
        return hit
    parts = [p for p in re.split(r"[-'/]", raw) if p]
    kept = tuple(
        stem(part) for part in parts if part not in STOP_WORDS and (len(part) > 1 or part.isdigit())
    )
    result = (kept, stem("".join(parts)) if len(parts) > 1 else None)
    if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
        _TOKEN_CACHE.clear()
    _TOKEN_CACHE[raw] = result
    return result


def words(text: str) -> tuple[list[str], list[str]]:
    """Content words, stemmed, in order; and the joined forms of hyphenated words."""
    out: list[str] = []
    joined: list[str] = []
    for raw in _WORD.findall(fold(text)):
        kept, whole = _analyse_token(raw)
        out.extend(kept)
        if whole is not None:
            joined.append(whole)
    return out, joined


def _phrase_words(text: str) -> list[str]:
    """Words of a query phrase in order, without the joined form of hyphenated words."""
    out: list[str] = []
    for match in _WORD.finditer(fold(text)):
        for part in re.split(r"[-'/]", match.group(0)):
            if part and part not in STOP_WORDS and (len(part) > 1 or part.isdigit()):
                out.append(stem(part))
    return out


def labelled_terms(text: str) -> dict[str, str]:
    """Unigram and bigram terms of a text -> the words as written (for explanations)."""
    pairs: list[tuple[str, str]] = []
    for match in _WORD.finditer(fold(text)):
        for part in re.split(r"[-'/]", match.group(0)):
            if part and part not in STOP_WORDS and (len(part) > 1 or part.isdigit()):
                pairs.append((stem(part), part))
    out = {term: word for term, word in pairs}
    for (a, wa), (b, wb) in pairwise(pairs):
        out.setdefault(f"{a} {b}", f"{wa} {wb}")
    return out


def terms(analysed: tuple[list[str], list[str]]) -> list[str]:
    """Unigrams, adjacent bigrams and joined hyphenated words."""
    tokens, joined = analysed
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)] + joined


def phrase_terms(phrase: str) -> list[str]:
    """The index terms that stand for a keyword: its unigram, or all its bigrams.

    ``self-supervised`` is a phrase (``self supervis``); ``subquadratic`` a unigram.
    """
    tokens = _phrase_words(phrase)
    if len(tokens) <= 1:
        return tokens
    return [f"{a} {b}" for a, b in pairwise(tokens)]


def phrase_unigrams(phrase: str) -> list[str]:
    return list(dict.fromkeys(_phrase_words(phrase)))


def expansions(phrase: str) -> list[str]:
    """The phrase and its acronym counterpart(s): ``SSM`` <-> ``state space model``."""
    key = " ".join(_phrase_words(phrase))
    out = [phrase]
    if not _ACRONYM_KEYS:
        _ACRONYM_KEYS.extend(
            (short, long, " ".join(_phrase_words(long))) for short, long in ACRONYMS.items()
        )
    if re.search(r"[a-z0-9][-/][a-z0-9]", fold(phrase)):
        out.append(re.sub(r"(?<=[a-z0-9])[-/](?=[a-z0-9])", "", fold(phrase)))
    for short, long, long_key in _ACRONYM_KEYS:
        if key in (short, stem(short)) or key == stem(short + "s"):
            out.append(long)
        elif key == long_key:
            out.append(short)
    return list(dict.fromkeys(out))


_COLUMN_CACHE: dict[str, int] = {}


def column(term: str) -> int:
    """The hashed column of a term (CRC-32: stable across processes and platforms)."""
    hit = _COLUMN_CACHE.get(term)
    if hit is None:
        hit = zlib.crc32(term.encode()) & (N_COLUMNS - 1)
        if len(_COLUMN_CACHE) >= _TOKEN_CACHE_MAX:
            _COLUMN_CACHE.clear()
        _COLUMN_CACHE[term] = hit
    return hit


def columns(items: Iterable[str]) -> list[int]:
    return [column(t) for t in items]
