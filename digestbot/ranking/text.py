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
from array import array
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain, pairwise, repeat
from operator import itemgetter

import numpy as np
import numpy.typing as npt
import Stemmer

from digestbot.ids import fold_tex_accents
from digestbot.ranking.stopwords import STOP_WORDS

N_COLUMNS = 1 << 22  # hashed term space
TOKENIZER_VERSION = 6  # bump when the analysis changes: persisted indexes are rebuilt

# After ``fold`` the only characters left outside ASCII are letters, digits and marks of
# any script. Chinese and Japanese are written without spaces: each Han or kana character
# is a word of its own, so a run of them is indexed as its characters and their adjacent
# pairs (bigrams), and a CJK keyword is matched as the phrase of its character bigrams.
_CJK = (
    "\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003ffff"
)
# a word character that is not CJK: ASCII letters and digits, any other script's letters
_LETTER = (
    "a-z0-9\u0080-\u3004\u3008-\u303f\u3100-\u31ef\u3200-\u33ff\u4dc0-\u4dff"
    "\ua000-\uf8ff\ufb00-\U0001ffff\U00040000-\U0010ffff"
)
# The same classes written the way Python's regex compiler builds fast (a few ASCII
# ranges, negated), which matters once per command: the ranges above cost ~25 ms to
# compile. ``tests/ranking/test_text.py`` checks they match the same characters.
_LETTER_FAST = "^\\x00-/:-`{-\\x7f" + _CJK  # negated: not ASCII outside a-z0-9, not CJK
_WORD_CHAR = "a-z0-9\\x80-\\U0010ffff"  # _LETTER or _CJK
_MARK = "(?:(?!\\s)[\\x00-/:-`{-\\x7f])"  # neither a space nor _LETTER nor _CJK
_IS_CJK = re.compile(f"[{_CJK}]")
_WORD = re.compile(f"[{_CJK}]|[{_LETTER_FAST}]+(?:[-'/][{_LETTER_FAST}]+)*")
# a word as above (a CJK run as one), or one punctuation mark: what ends a run of words
# written side by side
WORD_OR_MARK = re.compile(f"[{_CJK}]+|[{_LETTER_FAST}]+(?:[-'/][{_LETTER_FAST}]+)*|{_MARK}")
_HYPHENATED = re.compile(f"[{_WORD_CHAR}][-/][{_WORD_CHAR}]")
_STEMMER = Stemmer.Stemmer("english")
_STEMMERS = {"cyrillic": Stemmer.Stemmer("russian"), "greek": Stemmer.Stemmer("greek")}

# Acronyms a researcher writes either way. Each is expanded both ways at query
# time only (documents are indexed as written), and only where the short form is
# unambiguous in machine-learning text. An acronym whose expansion is written in
# more than one way lists them all: each finds the acronym and the others.
ACRONYMS: dict[str, str | tuple[str, ...]] = {
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
    "cnn": "convolutional neural network",
    "rnn": "recurrent neural network",
    "gan": "generative adversarial network",
    "vae": "variational autoencoder",
    "mlp": ("multilayer perceptron", "multi-layer perceptron"),
    "nerf": "neural radiance field",
    "ood": "out-of-distribution",
    "sgd": "stochastic gradient descent",
    "nlp": "natural language processing",
    "rag": "retrieval-augmented generation",
    "cot": "chain-of-thought",
    "sft": "supervised fine-tuning",
    "dpo": "direct preference optimization",
    "vqa": "visual question answering",
    "mri": "magnetic resonance imaging",
}


# (short form, its expansions as searched, their words as stemmed): built on first use
_ACRONYM_KEYS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []


# letters that carry their mark in themselves (no decomposition): as their base letters
_BASE_LETTERS = {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe"}
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_NOT_DIACRITIC = re.compile(r"[^\x00-\x7f\u0300-\u036f]")


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """One non-ASCII character of NFKD text: a letter, digit or mark of any script kept
    (case-folded), a Latin, Greek or Cyrillic diacritic (U+0300-U+036F) dropped, and any
    other character (punctuation, symbols) dropped as ASCII folding always did."""
    if "\u0300" <= char <= "\u036f" or unicodedata.category(char)[0] not in "LNM":
        return ""
    folded = char.casefold()
    folded = "".join(c for c in folded if not "\u0300" <= c <= "\u036f")
    return _BASE_LETTERS.get(folded, folded)


def _fold_run(match: re.Match[str]) -> str:
    return "".join(map(_fold_char, match.group(0)))


def fold(text: str) -> str:
    """Text as matched: compatibility-normalised (NFKC), lower case, diacritics removed
    (``naïve`` -> ``naive``, ``Schrödinger`` -> ``schrodinger``, ``Ørsted`` -> ``orsted``),
    punctuation and symbols outside ASCII removed; the letters and digits of every script
    kept (``Трансформер`` -> ``трансформер``, ``強化学習``). TeX accents as arXiv's titles
    keep them are their letters first (``Schr\\"odinger``, as ``ids.normalize_title``
    reads them). Other ASCII text is only lower-cased, as it always was."""
    if "\\" in text:
        text = fold_tex_accents(text)
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    if not any(map(_fold_char, set(_NOT_DIACRITIC.findall(text)))):  # Latin with diacritics
        return text.encode("ascii", "ignore").decode().lower()
    if "\u0306" in text:  # Cyrillic й is a letter of its own, not и with a breve
        text = text.replace("\u0438\u0306", "\u0439").replace("\u0418\u0306", "\u0439")
    text = _NON_ASCII.sub(_fold_run, text).lower()
    return text if text.isascii() else unicodedata.normalize("NFC", text)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """English Snowball stem; Russian or Greek Snowball for a Cyrillic or Greek word; a
    word of another script as it is."""
    if word.isascii():
        return str(_STEMMER.stemWord(word))
    if any("\u0400" <= c <= "\u04ff" for c in word):
        return str(_STEMMERS["cyrillic"].stemWord(word))
    if any("\u0370" <= c <= "\u03ff" or "\u1f00" <= c <= "\u1fff" for c in word):
        return str(_STEMMERS["greek"].stemWord(word))
    return word if _IS_CJK.match(word) else str(_STEMMER.stemWord(word))


_TOKEN_CACHE: dict[str, tuple[tuple[str, ...], str | None]] = {}
_TOKEN_CACHE_MAX = 500_000


def _word_parts(raw: str) -> list[str]:
    """A token's parts between hyphens, apostrophes and slashes (``low-bit``: low, bit)."""
    return [p for p in re.split(r"[-'/]", raw) if p]


def _is_content(part: str) -> bool:
    """Whether a part counts as a word: not a stop word, and a digit if one character."""
    return part not in STOP_WORDS and (
        len(part) > 1 or part.isdigit() or _IS_CJK.match(part) is not None
    )


def _analyse_new_token(raw: str) -> tuple[tuple[str, ...], str | None]:
    """A raw token -> its stemmed content parts and, when hyphenated, its joined stem."""
    parts = _word_parts(raw)
    kept = tuple(stem(part) for part in parts if _is_content(part))
    return kept, stem("".join(parts)) if len(parts) > 1 else None


def words(text: str) -> tuple[list[str], list[str]]:
    """Content words, stemmed, in order; and the joined forms of hyphenated words.

    Each distinct token is analysed once (``_TOKEN_CACHE``); the stream is then put
    together by C-level maps, not a Python loop per token (proximity reads abstracts). Safe
    in threads: a token another thread's clearing removed is analysed again here."""
    tokens = _WORD.findall(fold(text))
    missing = set(tokens).difference(_TOKEN_CACHE)
    if missing:
        if len(_TOKEN_CACHE) + len(missing) > _TOKEN_CACHE_MAX:
            _TOKEN_CACHE.clear()
            missing = set(tokens)
        for raw in missing:
            _TOKEN_CACHE[raw] = _analyse_new_token(raw)
    try:
        analysed = list(map(_TOKEN_CACHE.__getitem__, tokens))
    except KeyError:  # another thread (the Slack app ranks in several) cleared the full cache
        analysed = [_TOKEN_CACHE.get(raw) or _analyse_new_token(raw) for raw in tokens]
    out = list(chain.from_iterable(map(itemgetter(0), analysed)))
    joined = [whole for _, whole in analysed if whole is not None]
    return out, joined


def _phrase_words(text: str) -> list[str]:
    """Words of a query phrase in order, without the joined form of hyphenated words."""
    return [word for raw in _WORD.findall(fold(text)) for word in _analyse_new_token(raw)[0]]


def labelled_terms(text: str) -> dict[str, str]:
    """Unigram and bigram terms of a text -> the words as written (for explanations)."""
    pairs: list[tuple[str, str]] = []
    for raw in _WORD.findall(fold(text)):
        pairs.extend((stem(part), part) for part in _word_parts(raw) if _is_content(part))
    out = {term: word for term, word in pairs}
    for (a, wa), (b, wb) in pairwise(pairs):
        out.setdefault(f"{a} {b}", f"{wa} {wb}")
    return out


def terms(analysed: tuple[list[str], list[str]]) -> list[str]:
    """Unigrams, adjacent bigrams and joined hyphenated words."""
    tokens, joined = analysed
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)] + joined


def phrase_terms(phrase: str, *, whole: bool = True) -> list[str]:
    """The index terms that stand for a keyword: its unigram, or all its bigrams.

    ``self-supervised`` is a phrase (``self supervis``); ``subquadratic`` a unigram;
    ``k-means`` its joined form (``kmean``: ``mean`` is another word), unless ``whole`` is
    false (a longer keyword's back-off words keep the part left).
    """
    tokens = _phrase_words(phrase)
    if len(tokens) <= 1:
        joined = _joined_word(phrase) if whole else None
        return [joined] if joined is not None else tokens
    return [f"{a} {b}" for a, b in pairwise(tokens)]


def _joined_word(phrase: str) -> str | None:
    """For one hyphenated word that loses a part to the stop words or to its length
    (``k-means``, ``off-policy``, ``X-ray``): its joined stem as the index holds it, since
    the part left (``mean``, ``policy``, ``ray``) is another word; else None."""
    found = _WORD.findall(fold(phrase))
    if len(found) != 1:
        return None
    kept, whole = _analyse_new_token(found[0])
    return whole if whole is not None and len(kept) < len(_word_parts(found[0])) else None


def phrase_unigrams(phrase: str) -> list[str]:
    return list(dict.fromkeys(_phrase_words(phrase)))


# Acronyms mined from the stored papers (``ranking.acronyms.mined_expansions``): a phrase
# key (a short form's, or a long form's) -> the phrases it also stands for
Mined = tuple[tuple[str, tuple[str, ...]], ...]


def _acronym_keys() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    if not _ACRONYM_KEYS:
        for short, written in ACRONYMS.items():
            forms = tuple(map(_long_form, (written,) if isinstance(written, str) else written))
            _ACRONYM_KEYS.append((short, forms, tuple(" ".join(_phrase_words(f)) for f in forms)))
    return _ACRONYM_KEYS


def static_acronym_keys() -> frozenset[str]:
    """The phrase keys ``ACRONYMS`` speaks for: its short forms (as stemmed, with a plural
    ``s``) and its expansions'."""
    out: set[str] = set()
    for short, _, form_keys in _acronym_keys():
        out.update((short, stem(short), stem(short + "s")), form_keys)
    return frozenset(out)


def expansions(phrase: str, mined: Mined = ()) -> list[str]:
    """The phrase and its acronym counterpart(s): ``SSM`` <-> ``state space model``, from
    ``ACRONYMS``, else from ``mined`` (the store's papers' own definitions)."""
    key = " ".join(_phrase_words(phrase))
    keys = {key}
    out = [phrase]
    if _HYPHENATED.search(fold(phrase)):
        out.append(_joined(phrase))
        keys.add(" ".join(_phrase_words(out[-1])))
    plain = len(out)
    for short, forms, form_keys in _acronym_keys():
        if key in (short, stem(short)) or key == stem(short + "s"):
            out.extend(forms)
        elif keys.intersection(form_keys):
            out.append(short)
            if len(forms) > 1:  # the expansion's other spellings
                out.extend(forms)
    if len(out) == plain and mined:  # the static table wins where it has an entry
        for known, counterparts in mined:
            if known in keys:
                out.extend(counterparts)
    return list(dict.fromkeys(out))


def _joined(phrase: str) -> str:
    """The phrase with its hyphenated (or slashed) words as one: ``low-bit`` -> ``lowbit``."""
    return re.sub(f"(?<=[{_LETTER}{_CJK}])[-/](?=[{_LETTER}{_CJK}])", "", fold(phrase))


def _long_form(long: str) -> str:
    """An acronym's expansion as searched: as written, unless its stop words leave a single
    content word (``out-of-distribution``: ``distribution`` is not ``OOD``); then its
    joined form (the index holds ``outofdistribution`` for a hyphenated word)."""
    if len(_phrase_words(long)) < 2 and _HYPHENATED.search(fold(long)):
        return _joined(long)
    return long


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


# --- many texts at once (building an index segment) -------------------------------
#
# The same terms and columns as ``words``/``terms``/``column``, with a few Python calls
# per text instead of several per word: the texts are folded and split by one regex
# call, each distinct raw token is analysed once (then kept as an integer id), and
# the terms' columns are computed with numpy. A bigram's CRC-32 comes from its two
# words' (``crc(a + " " + b)`` is ``crc(a)`` advanced over ``len(" " + b)`` zero bytes,
# XOR ``crc(" " + b)``: the advance is linear, so a table lookup), no string is formatted.

_SEP = "\x00"  # between texts: not a word character, unchanged by ``fold``
# folded bytes -> only word characters and the separator kept: split on whitespace, the
# pieces are runs of word characters, each holding one or more ``_WORD`` tokens
# (bytes of UTF-8 sequences are kept: ``fold`` leaves only letters, digits and marks there)
_PIECES = bytes(
    c if c >= 128 or chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789-'/" + _SEP else 32
    for c in range(256)
)
_CRC_POLY = 0xEDB88320  # CRC-32 (zlib), reflected
_MAX_SHIFT = 256  # bigrams whose second word is longer are hashed as strings


class _Vocabulary:
    """Raw tokens and stems seen so far, as integer ids with their analysis and CRCs."""

    def __init__(self) -> None:
        # a piece (see ``_PIECES``) -> id; the separator is 0
        self.raw_id: dict[bytes, int] = {_SEP.encode(): 0}
        # compact typed buffers, not lists of Python ints (hundreds of thousands of pieces)
        self.kept_start = array("q", [0])
        self.kept_len = array("q", [0])
        self.kept = array("q")  # stem ids of every piece's content words, back to back
        self.joined_start = array("q", [0])
        self.joined_len = array("q", [0])
        self.joined = array("q")  # stem ids of the joined forms of its hyphenated tokens
        self.stem_id: dict[str, int] = {}
        self.stems: list[str] = []
        self.crc = array("q")  # crc32(stem)
        self.crc_sp = array("q")  # crc32(" " + stem)
        self.len_sp = array("q")  # len(" " + stem), bytes
        self._arrays: dict[str, npt.NDArray[np.int64]] = {}

    def array(self, name: str) -> npt.NDArray[np.int64]:
        """One of the lists as an array, extended with what was added since the last call."""
        items: array[int] = getattr(self, name)
        have = self._arrays.get(name, _NO_INTS)
        if len(have) < len(items):
            tail = np.frombuffer(items[len(have) :], dtype=np.int64)
            have = self._arrays[name] = np.concatenate([have, tail])
        return have

    def stem_of(self, term: str) -> int:
        hit = self.stem_id.get(term)
        if hit is None:
            hit = self.stem_id[term] = len(self.stems)
            self.stems.append(term)
            data = term.encode()
            self.crc.append(zlib.crc32(data))
            self.crc_sp.append(zlib.crc32(b" " + data))
            self.len_sp.append(len(data) + 1)
        return hit

    def add(self, piece: bytes) -> int:
        hit = self.raw_id.get(piece)
        if hit is not None:
            return hit
        kept: list[int] = []
        joined: list[int] = []
        for raw in _WORD.findall(piece.decode()):
            words, whole = _analyse_new_token(raw)  # not kept in ``_TOKEN_CACHE`` too
            kept += map(self.stem_of, words)
            if whole is not None:
                joined.append(self.stem_of(whole))
        self.kept_start.append(len(self.kept))
        self.kept_len.append(len(kept))
        self.kept.extend(kept)
        self.joined_start.append(len(self.joined))
        self.joined_len.append(len(joined))
        self.joined.extend(joined)
        hit = self.raw_id[piece] = len(self.kept_len) - 1
        return hit


_NO_INTS = np.zeros(0, dtype=np.int64)
_VOCAB = _Vocabulary()
_SHIFT = np.zeros((0, 4, 256), dtype=np.uint32)  # see ``_shift_tables``
_BYTE_BITS = (np.arange(256)[:, None] >> np.arange(8)) & 1


def _shift_tables(upto: int) -> npt.NDArray[np.uint32]:
    """Tables ``T[n, p, v]``: a CRC register advanced over n zero bytes is the XOR over
    its bytes p of ``T[n, p, byte p]`` (the advance is linear). Grown on demand."""
    global _SHIFT
    if len(_SHIFT) > upto:
        return _SHIFT
    tables = []
    images = [1 << bit for bit in range(32)]  # the basis, advanced over n zero bytes
    for _ in range(upto + 1):
        img = np.asarray(images, dtype=np.uint32)
        tables.append(
            [
                np.bitwise_xor.reduce(np.where(_BYTE_BITS, img[8 * p : 8 * p + 8], 0), axis=1)
                for p in range(4)
            ]
        )
        for i, x in enumerate(images):
            for _ in range(8):
                x = (x >> 1) ^ (_CRC_POLY if x & 1 else 0)
            images[i] = x
    _SHIFT = np.asarray(tables, dtype=np.uint32)
    return _SHIFT


def _advance(crc: npt.NDArray[np.uint32], n: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
    """Each CRC register advanced over ``n`` zero bytes (every ``n`` <= ``_MAX_SHIFT``)."""
    tables = _shift_tables(int(n.max()) if len(n) else 0)
    out: npt.NDArray[np.uint32] = tables[n, 0, crc & 0xFF]
    out ^= tables[n, 1, (crc >> 8) & 0xFF]
    out ^= tables[n, 2, (crc >> 16) & 0xFF]
    out ^= tables[n, 3, crc >> 24]
    return out


def _expand(
    vocab: _Vocabulary, name: str, ids: npt.NDArray[np.int64], owner: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The stem ids listed for each piece (``name``: kept or joined), back to back, and
    the owner of each."""
    length = vocab.array(name + "_len")[ids]
    start = vocab.array(name + "_start")[ids]
    at = np.repeat(start - np.cumsum(length) + length, length)
    at += np.arange(len(at))
    return vocab.array(name)[at], np.repeat(owner, length)


def batch_columns(
    texts: Sequence[str],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The term columns of many texts: (text of each term, its column, content words per
    text). Per text, the columns are ``columns(terms(words(text)))`` (in another order)."""
    global _VOCAB
    if len(_VOCAB.raw_id) >= _TOKEN_CACHE_MAX:  # bounded memory in a long-lived process
        _VOCAB = _Vocabulary()
    vocab = _VOCAB
    joined_text = f" {_SEP} ".join(t.replace(_SEP, " ") if _SEP in t else t for t in texts)
    pieces = fold(joined_text).encode().translate(_PIECES).split()  # as ``_WORD`` would split
    ids = np.fromiter(map(vocab.raw_id.get, pieces, repeat(-1)), dtype=np.int64, count=len(pieces))
    missing = np.flatnonzero(ids < 0).tolist()
    if missing:  # each new piece analysed once, however often it occurs
        new = [pieces[i] for i in missing]
        for piece in dict.fromkeys(new):
            vocab.add(piece)
        ids[missing] = list(map(vocab.raw_id.__getitem__, new))
    del pieces
    owner = np.cumsum(ids == 0)  # the text of each piece (separators count)
    word, word_owner = _expand(vocab, "kept", ids, owner)  # content words, in order
    joined, joined_owner = _expand(vocab, "joined", ids, owner)
    crc = vocab.array("crc").astype(np.uint32)
    mask = np.uint32(N_COLUMNS - 1)
    # bigrams: adjacent content words of one text
    pair = np.flatnonzero(word_owner[:-1] == word_owner[1:])
    first, second = word[pair], word[pair + 1]
    n = vocab.array("len_sp")[second]
    long = n > _MAX_SHIFT
    bigram = np.zeros(len(pair), dtype=np.uint32)
    short = ~long
    bigram[short] = (
        _advance(crc[first[short]], n[short])
        ^ vocab.array("crc_sp").astype(np.uint32)[second[short]]
    )
    for i in np.flatnonzero(long).tolist():
        a, b = vocab.stems[int(first[i])], vocab.stems[int(second[i])]
        bigram[i] = zlib.crc32(f"{a} {b}".encode())
    cols = np.concatenate([crc[word], bigram, crc[joined]]) & mask
    owners = np.concatenate([word_owner, word_owner[pair], joined_owner])
    n_words = np.bincount(word_owner, minlength=len(texts))
    return owners, cols.astype(np.int64), n_words.astype(np.int64)
