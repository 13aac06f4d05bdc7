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
