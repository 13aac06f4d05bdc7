"""Acronyms the papers define (Schwartz & Hearst): what is mined, and which are trusted."""

from __future__ import annotations

import pytest

from digestbot.ranking.acronyms import (
    Counted,
    Definition,
    best_long_form,
    definitions,
    mined_expansions,
    paper_definitions,
    trusted,
)
from digestbot.ranking.text import expansions, static_acronym_keys


def pairs(text: str) -> list[tuple[str, str]]:
    return [(d.short, d.long) for d in definitions(text)]


def test_long_form_then_short_form_in_parentheses() -> None:
    found = definitions("We revisit state space models (SSMs) for long sequences.")
    assert found == [
        Definition(
            short_key="ssm",
            long_key="state space model",
            spelling="state space model",
            short="SSM",
            long="state space models",
        )
    ]


def test_short_form_then_long_form_in_parentheses() -> None:
    text = "We train a JEPA (joint embedding predictive architecture) on video."
    assert pairs(text) == [("JEPA", "joint embedding predictive architecture")]


def test_the_long_form_is_the_shortest_span_that_holds_the_letters() -> None:
    # "the" also starts with a t: the span starts at "tensor", the nearest word that can
    text = "Weights are compressed via the tensor train decomposition (TTD) of each layer."
    assert pairs(text) == [("TTD", "tensor train decomposition")]
    assert best_long_form("TTD", "via the tensor train decomposition") == (
        "tensor train decomposition"
    )


def test_the_first_letter_must_start_a_word() -> None:
    # the "k" of "makes" cannot start KAN: "kolmogorov" does
    text = "This makes Kolmogorov-Arnold networks (KANs) practical."
    assert pairs(text) == [("KAN", "kolmogorov-arnold networks")]
    assert best_long_form("XY", "a taxonomy") is None  # no word starts with x


def test_a_definition_after_a_clause_ends_does_not_reach_back_into_it() -> None:
    text = "We use deep learning. Graph transformers (GT) are next."
    assert pairs(text) == [("GT", "graph transformers")]


@pytest.mark.parametrize(
    "text",
    [
        "Results improve (ours) on every benchmark.",  # no capital: not an acronym
        "Models such as Mamba (Gu and Dao) scale well.",  # a name, not an acronym
        "A selective model (Mamba) scales.",  # one capital, lower case after it
        "The loss is bounded (12) as shown.",  # no letter
        "See the result (A) below.",  # one character
        "A very long name (ABCDEFGHIJK) here.",  # longer than 10
        "We use fast inference (XYZ) here.",  # the letters are not in the words before
        "Networks (-NN) are used.",  # does not start with a letter or digit
        "The CNN (CNN) baseline.",  # the long form holds the short form itself
        # the parenthesis says more than the long form: its last word holds no letter of it
        "We prompt LLMs (large language models such as GPT-4) to rank.",
        "DiT (diffusion transformer-based video generation models) scale.",
    ],
)
def test_refused(text: str) -> None:
    assert definitions(text) == []


def test_a_paper_defines_an_acronym_once_in_title_and_abstract() -> None:
    found = paper_definitions(
        "Sparse autoencoders (SAEs) for vision",
        "Sparse autoencoders (SAEs) find features; a sparse autoencoder (SAE) is trained.",
    )
    assert [(d.short_key, d.long_key) for d in found] == [("sae", "spars autoencod")]


def counted(short: str, long: str, papers: int, spelling: str | None = None) -> Counted:
    key = long.replace("-", " ")
    return Counted(short.lower(), key, spelling or key, short, long, papers)


def test_an_acronym_defined_by_one_paper_is_not_trusted() -> None:
    assert trusted([counted("KAN", "kolmogorov arnold networks", 1)]) == {}
    kept = trusted([counted("KAN", "kolmogorov arnold networks", 2)])
    assert [i.long for i in kept["kan"]] == ["kolmogorov arnold networks"]


def test_two_common_long_forms_make_a_short_form_ambiguous() -> None:
    sam = [counted("SAM", "segment anything model", 2), counted("SAM", "sharpness aware min", 2)]
    assert trusted(sam) == {}
    # one long form given by two thirds of the papers is trusted
    two_of_three = [sam[0], counted("SAM", "sharpness aware min", 1)]
    assert list(trusted(two_of_three)) == ["sam"]
    # under two thirds it is not (3 of 5)
    assert trusted([counted("SAM", "segment anything model", 3), sam[1]]) == {}


def test_spellings_of_one_long_form_count_together() -> None:
    found = [
        counted("MLP", "multilayer perceptrons", 1, spelling="multilay perceptron"),
        counted("MLP", "multi-layer perceptrons", 1, spelling="multilay perceptron"),
        counted("MLP", "max likelihood path", 1),
    ]
    kept = trusted(found)  # 2 of 3 papers for the one long form, written two ways
    assert sorted(i.long for i in kept["mlp"]) == [
        "multi-layer perceptrons",
        "multilayer perceptrons",
    ]


def test_mined_acronyms_expand_both_ways_unless_the_static_table_has_them() -> None:
    found = [
        Counted(
            "kan",
            "kolmogorov arnold network",
            "kolmogorov arnold network",
            "KAN",
            "kolmogorov arnold networks",
            3,
        ),
        # ACRONYMS has SSM: left to it
        Counted(
            "ssm",
            "structur spars matric",
            "structur spars matric",
            "SSM",
            "structured sparse matrices",
            5,
        ),
    ]
    mined = mined_expansions(found, static=static_acronym_keys())
    assert expansions("KAN", mined) == ["KAN", "kolmogorov arnold networks"]
    assert expansions("KANs", mined) == ["KANs", "kolmogorov arnold networks"]
    assert expansions("Kolmogorov Arnold network", mined) == ["Kolmogorov Arnold network", "KAN"]
    assert expansions("SSM", mined) == ["SSM", "state space model"]
    assert expansions("KAN") == ["KAN"]  # nothing mined: nothing expanded
