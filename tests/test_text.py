"""Word tokens and the question's specific terms (numbers and names) that a passage must share to answer it."""

from __future__ import annotations

import pytest

from tr_qa.text import specific_overlap, specific_terms, terms


def test_terms_drop_stopwords_and_stem_plurals() -> None:
    assert terms("The companies paid the offenders") == ["company", "paid", "offender"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How much did the companies get in the 2016 bail out?", ["2016"]),
        ("Who was Justice Secretary before Chris Grayling?", ["justice secretary", "chris grayling"]),
        ("What is the boiling point of mercury?", []),
        ("Did it cost £3,700 million?", ["3700"]),
    ],
)
def test_specific_terms_are_numbers_and_names_but_not_the_first_word(question: str, expected: list[str]) -> None:
    assert specific_terms(question) == expected


def test_a_passage_about_another_year_is_a_near_miss() -> None:
    question = "What was the reoffending rate in 2019?"
    assert specific_overlap(question, "In 2016 the reoffending rate was 45 per cent.") == 0.0
    assert specific_overlap(question, "By 2019 the rate had fallen.") == 1.0
    assert specific_overlap("What is the rate?", "anything") == 1.0
    assert specific_overlap("Did Working Links pay £1,500?", "working links paid 1500 pounds") == 1.0
