"""Russian function words carry no topic: dropped from documents and queries, so a
Russian profile does not match papers through ``для``, ``это`` or ``как`` alone."""

from __future__ import annotations

from datetime import UTC, datetime

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking import text
from digestbot.ranking.stopwords import STOP_WORDS
from digestbot.store import SqlStore

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_russian_function_words_are_stop_words_and_topic_words_are_kept() -> None:
    tokens, _ = text.words(
        "Это статья о том, как мы обучаем трансформеры для анализа текстов; ещё её"
    )
    assert tokens == ["стат", "обуча", "трансформер", "анализ", "текст"]
    # folded as the tokenizer folds them: Ещё -> еще
    assert {"это", "как", "для", "еще", "ее", "мы", "том"} <= STOP_WORDS


def test_a_russian_profile_matches_only_on_topic_words(store: SqlStore) -> None:
    papers = [
        Paper(title="Анализ текстов трансформерами", abstract="Мы обучаем модель для текстов."),
        Paper(title="Как это было: история для всех", abstract="Это о том, как мы жили."),
        *(
            Paper(title=f"Soil erosion study {i}", abstract=f"We look at soil erosion, case {i}.")
            for i in range(8)
        ),
    ]
    with store.transaction() as conn:
        store.upsert_papers(conn, papers, now=NOW)
    profile = Profile(name="ru", description="Это статьи о том, как анализ текстов для нас")
    ranked = rank_profile(store, profile, now=NOW, settings=RankingSettings())
    scores = {item.paper.title: item.score for item in ranked}
    assert scores["Анализ текстов трансформерами"] > 0
    assert scores["Как это было: история для всех"] == 0
