"""Relevance details that the development sets rely on (bench/relevance_eval.py)."""

from __future__ import annotations

import numpy as np
import pytest

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.lexical import Document, LexicalIndex
from digestbot.ranking.query import close_together
from digestbot.ranking.scorer import score_profile
from digestbot.ranking.semantic import Embedder, semantic_scores
from tests.conftest import NOW

FILLER = "We report experiments on several benchmarks and discuss limitations."


def paper(title: str, abstract: str = FILLER) -> Paper:
    return Paper(title=title, abstract=abstract)


def by_title(papers: list[Paper], profile: Profile) -> dict[str, tuple[float, tuple[str, ...]]]:
    return {s.paper.title: (s.score, s.matched) for s in rank(papers, profile, now=NOW)}


def test_words_of_a_keyword_found_apart_are_named_as_words_not_as_the_phrase() -> None:
    papers = [
        paper("Linear attention for long inputs", FILLER),
        paper("Attention heads under a linear probe", FILLER),
        paper("Protein folding", FILLER),
    ]
    got = by_title(papers, Profile(name="p", keywords=["linear attention"]))
    assert got["Linear attention for long inputs"][1] == ("linear attention",)
    assert set(got["Attention heads under a linear probe"][1]) == {"linear", "attention"}
    assert (
        got["Linear attention for long inputs"][0] > got["Attention heads under a linear probe"][0]
    )
    assert got["Protein folding"][0] == 0


def test_words_of_a_keyword_close_together_outrank_the_same_words_far_apart() -> None:
    # The same content words, the same length; only the distance between "linear" and
    # "attention" differs (two words apart against five).
    papers = [
        paper("Linear kernel for deep image classifiers with attention", FILLER),
        paper("Linear kernel attention for deep image classifiers", FILLER),
        paper("Protein folding", FILLER),
    ]
    got = by_title(papers, Profile(name="p", keywords=["linear attention"]))
    close = got["Linear kernel attention for deep image classifiers"]
    apart = got["Linear kernel for deep image classifiers with attention"]
    assert close[0] > apart[0] > 0
    assert set(close[1]) == set(apart[1]) == {"linear", "attention"}


def test_close_together_is_a_window_over_content_words() -> None:
    stems = ["linear", "kernel", "attent", "deep", "imag", "classifi"]
    assert close_together(stems, ("linear", "attent"), 3)
    assert close_together(stems, ("attent", "linear"), 2)
    assert not close_together(stems, ("linear", "attent"), 1)
    assert not close_together(stems, ("linear", "classifi"), 3)
    assert close_together(stems, ("kernel", "linear", "imag"), 3)
    assert not close_together(stems, ("linear", "protein"), 3)


def test_a_keyword_matches_other_forms_of_its_words() -> None:
    papers = [
        paper("Quantized transformers at four bits", FILLER),
        paper("Protein folding", FILLER),
    ]
    got = by_title(papers, Profile(name="p", keywords=["quantization"]))
    assert got["Quantized transformers at four bits"][0] > 0
    assert got["Quantized transformers at four bits"][1] == ("quantization",)


@pytest.mark.parametrize(
    ("keyword", "title"),
    [
        ("OOD", "Detecting out-of-distribution inputs with energy scores"),
        ("out-of-distribution", "OOD detection with energy scores"),
        ("NeRF", "Neural radiance fields from sparse views"),
        ("CNN", "Convolutional neural networks for tabular inputs"),
        ("retrieval-augmented generation", "RAG for long documents"),
    ],
)
def test_more_acronyms_match_their_expansion_both_ways(keyword: str, title: str) -> None:
    papers = [paper(title, FILLER), paper("Protein folding", FILLER)]
    got = by_title(papers, Profile(name="p", keywords=[keyword]))
    assert got[title][0] > 0
    assert got[title][1] == (keyword,)
    assert got["Protein folding"][0] == 0


@pytest.mark.parametrize(
    ("keyword", "title"),
    [
        ("OOD", "Sampling from a posterior distribution"),
        ("distribution", "OOD detection with energy scores"),
        ("distributions", "OOD detection with energy scores"),
    ],
)
def test_an_acronym_is_not_a_word_its_expansion_shares(keyword: str, title: str) -> None:
    # "out-of-distribution" holds one content word: "distribution" alone is not "OOD"
    papers = [paper(title, FILLER), paper("Protein folding", FILLER)]
    got = by_title(papers, Profile(name="p", keywords=[keyword]))
    assert got[title][0] == 0


def test_the_phrase_is_not_counted_again_through_its_words() -> None:
    # Both papers hold the phrase once; the second repeats the word "attention" apart.
    # Were the words counted where the phrase is found, the second would win.
    papers = [
        paper("Linear attention", "We study linear attention on benchmarks for long inputs."),
        paper("Linear attention", "Linear attention: attention, attention and more attention."),
    ]
    ranked = rank(papers, Profile(name="p", keywords=["linear attention"]), now=NOW)
    assert all(s.matched == ("linear attention",) for s in ranked)


def test_a_hyphenated_keyword_does_not_back_off_to_its_parts() -> None:
    papers = [
        paper("Low-bit quantization of transformers", FILLER),
        paper("Low memory training with one bit of state", FILLER),
    ]
    got = by_title(papers, Profile(name="p", keywords=["low-bit"]))
    assert got["Low-bit quantization of transformers"][0] > 0
    assert got["Low memory training with one bit of state"][0] == 0


@pytest.mark.parametrize(
    ("keyword", "found", "not_found"),
    [
        ("k-means", "K-means clustering of embeddings", "The mean field of a sample"),
        ("off-policy", "Off-policy evaluation with logged data", "On-policy gradient estimates"),
        ("X-ray", "Chest X-ray classification", "Ray tracing on graphics cards"),
        ("few-shot", "Few-shot prompting of small models", "A shot noise model for sensors"),
    ],
)
def test_a_hyphenated_word_with_a_stop_word_or_letter_part_is_not_its_other_part(
    keyword: str, found: str, not_found: str
) -> None:
    # "k", "off", "x", "few" are dropped as words: the keyword is its joined form, not "mean"
    papers = [paper(found, FILLER), paper(not_found, FILLER)]
    got = by_title(papers, Profile(name="p", keywords=[keyword]))
    assert got[found][0] > 0 and got[found][1] == (keyword,)
    assert got[not_found][0] == 0
    # as an exclude: the paper with the hyphenated word only
    last = not_found.split()[-1]
    excluded = by_title(papers, Profile(name="p", keywords=[last], exclude=[keyword]))
    assert excluded[not_found][0] > 0


def test_description_pairs_are_words_written_side_by_side() -> None:
    papers = [paper("Sharp minima", "How the learning rate and batch size shape sharp minima.")]
    papers += [paper(f"Filler {i}", FILLER) for i in range(8)]
    profile = Profile(name="p", description="Learning rate and batch size in deep networks.")
    matched = by_title(papers, profile)["Sharp minima"][1]
    assert "learning rate" in matched
    assert "rate batch" not in matched and "rate and batch" not in matched


def test_description_words_given_as_a_keyword_acronym_are_not_counted_twice() -> None:
    papers = [paper("An LLM that plays chess", "Large language models play chess.")]
    papers += [paper(f"Filler {i}", FILLER) for i in range(8)]
    profile = Profile(
        name="p", description="Large language models that play board games.", keywords=["LLM"]
    )
    matched = by_title(papers, profile)["An LLM that plays chess"][1]
    assert matched[0] == "LLM"
    assert not {"large", "language", "large language", "language models"} & set(matched)


def test_cl_is_not_read_as_continual_learning() -> None:
    papers = [
        paper("Decoupled contrastive learning", "Contrastive learning (CL) pulls views together."),
        paper("Rehearsal-free continual learning", FILLER),
    ]
    got = by_title(papers, Profile(name="p", keywords=["continual learning"]))
    assert "continual learning" not in got["Decoupled contrastive learning"][1]
    assert got["Rehearsal-free continual learning"][0] > got["Decoupled contrastive learning"][0]


def test_with_two_liked_papers_one_near_both_beats_one_near_only_one() -> None:
    liked = [
        paper("Tumour segmentation in brain MRI", "brain MRI tumour segmentation with a U-Net"),
        paper("Retinal scan diagnosis", "retinal fundus scans for clinical diagnosis screening"),
    ]
    near_both = paper("Clinical MRI screening", "clinical diagnosis from brain MRI screening")
    near_one = paper("U-Net tumour segmentation", "tumour segmentation with a U-Net brain")
    other = [paper(f"Filler {i}", FILLER) for i in range(6)]
    profile = Profile(name="p", like=[p.title for p in liked])
    got = by_title([*liked, near_both, near_one, *other], profile)
    assert got["Clinical MRI screening"][0] > got["U-Net tumour segmentation"][0] > 0


def test_semantic_like_scores_the_cosine_to_the_liked_papers_centroid() -> None:
    # Liked papers point along x and y; the centroid is (1, 1, 0, 0) / sqrt 2.
    vectors = np.asarray(
        [
            [1.0, 0.0, 0.0, 0.0],  # liked
            [0.0, 1.0, 0.0, 0.0],  # liked
            [0.6, 0.8, 0.0, 0.0],  # between both: cosine 0.99
            [0.8, 0.0, 0.6, 0.0],  # near one only: cosine 0.57
            [0.0, 0.0, 1.0, 0.0],  # unrelated: cosine 0
            [0.0, 0.0, 0.0, 1.0],  # unrelated: cosine 0
            [0.0, 0.0, 0.6, 0.8],  # unrelated: cosine 0
            [0.0, 0.0, 0.8, 0.6],  # unrelated: cosine 0
            [0.0, 0.0, 0.0, -1.0],  # unrelated: cosine 0
        ],
        dtype=np.float32,
    )
    embedder = Embedder("unused-for-like-only-profiles", max_tokens=16, batch_size=1)
    profile = Profile(name="p", like=["a", "b"])
    got = semantic_scores(embedder, vectors, profile, liked_rows=[0, 1])
    # median cosine 0 counts as none; the best paper not itself liked scales to 1
    assert got[2] == pytest.approx(1.0)
    # its calibrated centroid cosine, 0.8 / 1.4, counts 0.7; label spreading adds the rest
    assert 0.7 * 0.8 / 1.4 - 1e-6 <= got[3] < 1.0
    # unrelated papers: no centroid evidence; those linked to a paper near the liked ones
    # get a little of the spread evidence, less than the papers they are linked to
    assert max(got[4:]) < 0.3 * got[3]


def test_a_like_driven_pick_names_the_liked_paper_it_is_nearest() -> None:
    liked = [
        paper("Tumour segmentation in brain MRI", "brain MRI tumour segmentation with a U-Net"),
        paper("Retinal scan diagnosis", "retinal fundus scans for clinical diagnosis screening"),
    ]
    near_retina = paper("Fundus screening", "screening retinal fundus scans for diagnosis")
    near_mri = paper("U-Net for brain MRI", "tumour segmentation of brain MRI with a U-Net")
    other = [paper(f"Filler {i}", FILLER) for i in range(6)]
    profile = Profile(name="p", like=[p.title for p in liked])
    why = {
        s.paper.title: s.why
        for s in rank([*liked, near_retina, near_mri, *other], profile, now=NOW)
    }
    assert why["Fundus screening"] == "like “Retinal scan diagnosis”"
    assert why["U-Net for brain MRI"] == "like “Tumour segmentation in brain MRI”"


def test_a_profile_with_words_expands_its_query_more_broadly_than_a_like_only_one() -> None:
    # 20 papers on one topic sharing a 200-word vocabulary (each word in about 8 papers),
    # 10 unrelated ones: the top hits offer far more than 60 useful expansion terms.
    vocabulary = [f"term{i:03d}" for i in range(200)]
    docs = [
        Document(
            pk=i,
            title=f"Graph pruning study {i}",
            abstract=" ".join(vocabulary[(i * 7 + k) % 200] for k in range(80)),
        )
        for i in range(20)
    ]
    docs += [Document(pk=20 + i, title=f"Protein folding {i}", abstract=FILLER) for i in range(10)]
    index = LexicalIndex.build(docs)
    by_row = [(d.title, d.abstract) for d in docs]

    def expansion_terms(profile: Profile, liked: list[int]) -> int:
        return score_profile(
            index,
            profile,
            texts=lambda rows: [by_row[r] for r in rows],
            liked_rows=liked,
            settings=RankingSettings(embedding_model=None),
            now=NOW,
        ).expansion_terms

    assert expansion_terms(Profile(name="p", keywords=["graph pruning"]), []) == 60
    assert expansion_terms(Profile(name="p", like=["Graph pruning study 1"]), [1, 2]) == 40


def test_with_semantic_evidence_a_keywords_words_found_apart_count_for_less() -> None:
    docs = [
        Document(pk=1, title="Linear attention for long inputs", abstract=FILLER),
        Document(pk=2, title="Attention heads under a linear probe", abstract=FILLER),
        Document(pk=3, title="Protein folding", abstract=FILLER),
    ]
    index = LexicalIndex.build(docs)
    by_row = [(d.title, d.abstract) for d in docs]
    profile = Profile(name="p", keywords=["linear attention"])

    def apart_over_phrase(semantic: np.ndarray | None) -> float:
        total = score_profile(
            index,
            profile,
            texts=lambda rows: [by_row[r] for r in rows],
            settings=RankingSettings(embedding_model=None),
            now=NOW,
            semantic=semantic,
        ).total
        assert total[0] > total[1] > 0
        return float(total[1] / total[0])

    lexical = apart_over_phrase(None)
    # the same papers with semantic evidence that favours neither of the two
    with_vectors = apart_over_phrase(np.array([0.5, 0.5, 0.0]))
    assert with_vectors < lexical
    # a store where no paper has a vector yet ranks as without embeddings
    assert apart_over_phrase(np.full(3, np.nan)) == pytest.approx(lexical)


def test_excluded_papers_do_not_take_the_places_proximity_checks() -> None:
    # More excluded papers than proximity checks, each scoring higher on the words than
    # the two papers that count: those two are still checked for the words standing close.
    banned = [
        paper(f"Linear kernel attention, linear kernel attention banned {i}", FILLER)
        for i in range(40)
    ]
    papers = [
        *banned,
        paper("Linear kernel for deep image classifiers with attention", FILLER),
        paper("Linear kernel attention for deep image classifiers", FILLER),
    ]
    got = by_title(papers, Profile(name="p", keywords=["linear attention"], exclude=["banned"]))
    close = got["Linear kernel attention for deep image classifiers"][0]
    apart = got["Linear kernel for deep image classifiers with attention"][0]
    assert close > apart > 0
    assert all(got[p.title][0] == 0 for p in banned)


def test_beyond_the_cap_the_liked_papers_far_from_the_rest_do_not_drive_the_like_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digestbot.ranking import scorer

    # Years of 👍: each liked paper is a query on the whole store, so only the
    # LIKED_LEXICAL nearest their centroid are scored one by one.
    monkeypatch.setattr(scorer, "LIKED_LEXICAL", 4)
    on_topic = [
        Document(pk=i, title=f"Graph pruning of sparse networks {i}", abstract=FILLER)
        for i in range(5)
    ]
    stray = Document(pk=5, title="Medieval poetry and verse forms", abstract=FILLER)
    others = [
        Document(pk=6, title="Pruning sparse graph networks again", abstract=FILLER),
        Document(pk=7, title="Verse forms of medieval poetry", abstract=FILLER),
        Document(pk=8, title="Protein folding", abstract=FILLER),
    ]
    unrelated = [
        Document(pk=9 + i, title=f"{subject} in the wild", abstract=FILLER)
        for i, subject in enumerate(["Birds", "Rivers", "Storms", "Bridges", "Glaciers", "Tides"])
    ]
    docs = [*on_topic, stray, *others, *unrelated]
    index = LexicalIndex.build(docs)
    by_row = [(d.title, d.abstract) for d in docs]
    liked = list(range(6))  # five on graph pruning, one stray
    assert scorer.representative_liked(index, [by_row[r] for r in liked], limit=4) == [0, 1, 2, 3]
    scores = score_profile(
        index,
        Profile(name="p", like=["x"]),
        texts=lambda rows: [by_row[r] for r in rows],
        liked_rows=liked,
        settings=RankingSettings(embedding_model=None),
        now=NOW,
    )
    assert scores.nearest_liked is not None
    assert set(scores.nearest_liked.tolist()) <= {0, 1, 2, 3}  # never the stray (5)
    assert scores.total[6] > scores.total[7]
    # under the cap every liked paper counts, the stray too
    monkeypatch.setattr(scorer, "LIKED_LEXICAL", 50)
    assert scorer.representative_liked(index, [by_row[r] for r in liked], limit=50) == liked
