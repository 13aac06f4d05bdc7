"""Vowel signs, viramas and tone marks (Unicode Mn/Mc) of Brahmic and Thai titles are part
of their words: titles differing only in them are different papers. Ids of Latin, CJK and
Cyrillic titles do not change (pinned: computed by the code before)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from digestbot.ids import normalize_title, normalize_title_slow, title_id
from digestbot.ingest import ingest_paths
from digestbot.models import Paper
from digestbot.store import SqlStore
from tests.conftest import NOW

PINNED = {
    "Việt Nam học máy": "t-b99ba463dcbe",
    "Tiếng Việt: học sâu": "t-4d2f71d920e9",
    "q\u0303-deformed Algebras": "t-778c37c59b83",  # a Latin mark NFKC cannot compose
    "Ärger über Öl": "t-e5dac3c7f586",
    "Глубокое обучение для анализа текстов": "t-d37effcd1043",
    "大規模言語モデルの推論能力": "t-50939bd39b26",
    "กรเรยนรของเครอง": "t-54a1187a2efe",  # Thai without marks: as before
}


def test_ids_of_latin_cjk_cyrillic_titles_do_not_change() -> None:
    for title, ident in PINNED.items():
        assert title_id(title) == ident, title


def test_titles_differing_in_vowel_signs_are_different_keys() -> None:
    # Hindi: दिल (heart) and दाल (lentils) were both "द ल"; Thai: with and without marks
    assert normalize_title("दिल की बात") == "दिल की बात"
    assert title_id("दिल की बात") != title_id("दाल की बात")
    assert normalize_title("การเรียนรู้ของเครื่อง") == "การเรียนรู้ของเครื่อง"
    assert title_id("การเรียนรู้ของเครื่อง") != title_id("กรเรยนรของเครอง")
    assert normalize_title("தமிழ் மொழி: ஆய்வு") == "தமிழ் மொழி ஆய்வு"
    for title in ("दिल की बात", "การเรียนรู้ของเครื่อง"):
        assert normalize_title(title) == normalize_title_slow(title)


def drop(folder: Path, title: str, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(
        f"Daily Papers\n\nJan 8\n\n{title}\n\nAn abstract ({name}).\n\n"
        "  • 2 authors\n·\nJan 7, 2026 3\n",
        encoding="utf-8",
    )
    return path


def test_two_hindi_papers_differing_in_vowel_signs_stay_two(
    store: SqlStore, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drop(drops, "दिल की बात", "a.txt")
    drop(drops, "दाल की बात", "b.txt")
    report = ingest_paths(store, [drops], now=NOW)
    assert (report.papers_new, report.papers_merged) == (2, 0)
    assert store.get_paper("दिल की बात").title == "दिल की बात"
    assert store.get_paper("दाल की बात").title == "दाल की बात"


def test_an_older_database_rekeys_its_thai_titles_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = SqlStore.open(url)
    title = "การเรียนรู้ของเครื่อง"
    with old.transaction() as conn:
        old.upsert_papers(conn, [Paper(title=title, abstract="a")], now=NOW)
        old_key = "การเร ยนร ของเคร อง"  # as the code before made it
        old_tid = "t-" + hashlib.sha256(old_key.encode()).hexdigest()[:12]
        conn.exec_driver_sql("UPDATE papers SET title_key = ?, tid = ?, id = ?",
                             (old_key, old_tid, old_tid))  # fmt: skip
        conn.exec_driver_sql("DROP TABLE paper_aliases")
    old.close()
    store = SqlStore.open(url)
    try:
        report = ingest_paths(store, [drop(tmp_path / "drops", title, "t.txt")], now=NOW)
        assert (report.papers_new, report.papers_merged) == (0, 1)
        assert store.get_paper(old_tid).title == title  # its public id did not change
        assert store.count_papers() == 1
    finally:
        store.close()
