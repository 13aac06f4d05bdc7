"""Text analysis shared by the index and ranking (``digestbot.ranking.text``)."""

from __future__ import annotations

import threading

import pytest

from digestbot.ranking import text


def test_words_stems_content_words_and_joins_hyphenated_ones() -> None:
    assert text.words("The self-supervised models") == (
        ["self", "supervis", "model"],
        ["selfsupervis"],
    )


def test_words_is_safe_while_other_threads_fill_and_clear_the_token_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the Slack app ranks in several threads: a thread clearing the full cache must not make
    # another thread's words() fail on a token it has just analysed
    monkeypatch.setattr(text, "_TOKEN_CACHE_MAX", 40)
    errors: list[BaseException] = []
    wrong: list[str] = []

    def work(seed: int) -> None:
        try:
            for i in range(2000):
                got = text.words(" ".join(f"w{seed}x{i}y{j}" for j in range(15)))[0]
                if len(got) != 15:
                    wrong.append(f"{seed}/{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text._TOKEN_CACHE.clear()
    assert errors == [] and wrong == []


def test_the_fast_character_classes_match_the_written_ones() -> None:
    """The tokenizer's regexes use classes Python compiles quickly; each matches exactly the
    characters of the class it stands for (every BMP character, and the astral ranges'
    edges)."""
    import re

    from digestbot.ranking import text

    pairs = [
        (f"[{text._LETTER}]", f"[{text._LETTER_FAST}]"),
        (f"[{text._LETTER}{text._CJK}]", f"[{text._WORD_CHAR}]"),
        (f"[^\\s{text._LETTER}{text._CJK}]", text._MARK),
    ]
    astral = {0x10000, 0x1FFFF, 0x20000, 0x3FFFF, 0x40000, 0x10FFFF}
    points = [*range(0x10000), *(p + d for p in astral for d in (-1, 0, 1) if p + d <= 0x10FFFF)]
    for written, fast in pairs:
        a, b = re.compile(written), re.compile(fast)
        differ = [
            p for p in points if (a.fullmatch(chr(p)) is None) != (b.fullmatch(chr(p)) is None)
        ]
        assert differ == [], (written, fast, differ[:5])
