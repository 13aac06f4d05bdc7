"""Relevance details that the development sets rely on (bench/relevance_eval.py)."""

from __future__ import annotations

import numpy as np
import pytest

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.ranking import rank
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
