"""Behaviour of ``rank``/``pick`` on small hand-made paper sets."""

from __future__ import annotations

from datetime import date

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper, ScoredPaper
from digestbot.ranking import pick, rank
from tests.conftest import NOW

FILLER = "We report experiments on several benchmarks and discuss limitations."


def paper(title: str, abstract: str = FILLER, **kw: object) -> Paper:
    return Paper(title=title, abstract=abstract, **kw)  # type: ignore[arg-type]


def ids(ranked: list[ScoredPaper]) -> list[str]:
    return [s.paper.title for s in ranked]


def test_phrase_beats_scattered_words() -> None:
    papers = [
        paper("Attention sinks", "A linear probe shows which attention heads matter. " + FILLER),
        paper("Fast sequence models", "We propose linear attention for long inputs. " + FILLER),
        paper("Protein folding", "Structure prediction for proteins. " + FILLER),
    ]
    ranked = rank(papers, Profile(name="p", keywords=["linear attention"]), now=NOW)
    assert ids(ranked)[:2] == ["Fast sequence models", "Attention sinks"]
    assert ranked[0].score > ranked[1].score > 0
    assert ranked[2].score == 0 and ranked[2].why == "no profile terms matched"


def test_plural_hyphen_and_case_variants_match() -> None:
    papers = [
        paper("Selective State-Space Models scale", FILLER),
        paper("Self supervised pretraining of ViTs", FILLER),
        paper("A Subquadratic mixer", FILLER),
        paper("Unrelated title about proteins", FILLER),
    ]
    profile = Profile(name="p", keywords=["state space model", "self-supervised", "sub-quadratic"])
    ranked = rank(papers, profile, now=NOW)
    top = {s.paper.title: s for s in ranked[:3]}
    assert "Unrelated title about proteins" not in top
    assert all(s.score > 0 for s in top.values())
    assert top["Selective State-Space Models scale"].matched == ("state space model",)
    assert top["A Subquadratic mixer"].matched == ("sub-quadratic",)


def test_acronym_matches_its_expansion_both_ways() -> None:
    papers = [
        paper("Hungry hippos: on state space models for language", FILLER),
        paper("An LLM that plays chess", FILLER),
        paper("Gardening", FILLER),
    ]
    ranked = rank(papers, Profile(name="p", keywords=["SSM", "large language models"]), now=NOW)
    assert {s.paper.title for s in ranked if s.score > 0} == {
        "Hungry hippos: on state space models for language",
        "An LLM that plays chess",
    }


def test_excluded_papers_are_never_picked() -> None:
    papers = [
        paper("Quantization for medical imaging", "Quantization of CNNs for medical scans."),
        paper("Quantization of transformers", "Low-bit quantization of language models."),
    ]
    profile = Profile(name="p", keywords=["quantization"], exclude=["medical"], top_k=5)
    ranked = rank(papers, profile, now=NOW)
    assert ranked[-1].paper.title == "Quantization for medical imaging"
    assert ranked[-1].score == 0 and ranked[-1].why == "excluded by profile"
    assert [s.paper.title for s in pick(ranked, profile)] == ["Quantization of transformers"]


def test_description_filler_words_do_not_dominate() -> None:
    papers = [paper(f"Generic paper {i}", "We study learning with deep models.") for i in range(8)]
    papers.append(paper("Barlow twins revisited", "Redundancy reduction objective. " + FILLER))
    profile = Profile(
        name="p",
        description="Interested in learning with deep models, especially redundancy reduction.",
    )
    ranked = rank(papers, profile, now=NOW)
    assert ranked[0].paper.title == "Barlow twins revisited"
    assert "redundancy reduction" in ranked[0].matched or "redundancy" in ranked[0].matched


def test_ties_are_broken_by_upvotes_then_id_whatever_the_input_order() -> None:
    papers = [
        paper("Mamba one", "mamba", upvotes=3, arxiv_id="2401.00003"),
        paper("Mamba two", "mamba", upvotes=3, arxiv_id="2401.00001"),
        paper("Mamba three", "mamba", upvotes=9, arxiv_id="2401.00002"),
    ]
    profile = Profile(name="p", keywords=["nothing-matches-this"])
    first = [s.paper.id for s in rank(papers, profile, now=NOW)]
    second = [s.paper.id for s in rank(list(reversed(papers)), profile, now=NOW)]
    assert first == second == ["2401.00002", "2401.00001", "2401.00003"]


def test_top_k_and_min_score() -> None:
    papers = [paper(f"Pruning study {i}", "pruning " * (i + 1)) for i in range(5)]
    papers.append(paper("Nothing here"))
    ranked = rank(papers, Profile(name="p", keywords=["pruning"]), now=NOW)
    assert len(pick(ranked, Profile(name="p", keywords=["pruning"], top_k=2))) == 2
    assert ranked[0].score > ranked[1].score
    cut = (ranked[0].score + ranked[1].score) / 2
    strict = Profile(name="p", keywords=["pruning"], min_score=cut)
    assert [s.paper.id for s in pick(ranked, strict)] == [ranked[0].paper.id]
    assert all(
        s.paper.title != "Nothing here"
        for s in pick(ranked, Profile(name="p", keywords=["pruning"]))
    )


def test_like_only_profile_pulls_similar_papers_up() -> None:
    papers = [
        paper("Linear attention is all you need", "kernel feature maps replace softmax attention"),
        paper("Gated linear attention transformers", "linear attention with gates and kernels"),
        paper("Retentive networks", "a recurrent alternative to softmax attention with kernels"),
        paper("Diffusion for images", "denoising diffusion generates images"),
        paper("Graph neural networks", "message passing on graphs"),
    ]
    profile = Profile(
        name="p", like=["Linear attention is all you need", "gated linear attention transformers"]
    )
    ranked = [
        s
        for s in rank(papers, profile, now=NOW)
        if s.paper.title
        not in ("Linear attention is all you need", "Gated linear attention transformers")
    ]
    assert ranked[0].paper.title == "Retentive networks"
    assert ranked[0].why.startswith("like “")


def test_feedback_down_drops_a_paper_and_up_pulls_its_neighbours() -> None:
    papers = [
        paper("Pruning transformers", "structured pruning of attention heads"),
        paper("Pruning CNNs", "filter pruning for convolutional networks"),
        paper("Quantizing CNNs", "8-bit quantization of convolutional networks filters"),
        paper("Quantizing transformers", "quantization of attention heads"),
    ]
    profile = Profile(name="p", keywords=["pruning", "quantization"])
    before = rank(papers, profile, now=NOW)
    target = next(s for s in before if s.paper.title == "Pruning CNNs")
    after = rank(papers, profile, now=NOW, feedback=[(target.paper.id, -1)])
    assert after[-1].paper.title == "Pruning CNNs" and after[-1].score == 0
    assert after[-1].why == "marked 👎"
    liked = next(s for s in before if s.paper.title == "Quantizing CNNs")
    pulled = rank(papers, profile, now=NOW, feedback=[(liked.paper.id, 1)])
    position = {s.paper.title: i for i, s in enumerate(pulled)}
    assert position["Pruning CNNs"] < position["Pruning transformers"]


def test_upvotes_and_recency_are_small_configurable_priors() -> None:
    papers = [
        paper("Scaling laws A", "scaling law", upvotes=500, published=date(2020, 1, 1)),
        paper("Scaling laws B", "scaling law", upvotes=0, published=date(2026, 11, 20)),
        paper("Cooking", "recipes", upvotes=900, published=date(2026, 11, 22)),
    ]
    profile = Profile(name="p", keywords=["scaling law"])
    votes = rank(papers, profile, now=NOW, settings=RankingSettings(upvote_weight=0.05))
    assert [s.paper.title for s in votes][:2] == ["Scaling laws A", "Scaling laws B"]
    fresh = rank(
        papers,
        profile,
        now=NOW,
        settings=RankingSettings(upvote_weight=0.0, recency_weight=0.05, recency_half_life_days=7),
    )
    assert [s.paper.title for s in fresh][:2] == ["Scaling laws B", "Scaling laws A"]
    assert fresh[2].paper.title == "Cooking" and fresh[2].score == 0
    assert abs(fresh[0].score - fresh[1].score) <= 0.05
