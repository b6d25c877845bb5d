"""Did-you-mean: one helper, used by every message about an unknown name."""

from __future__ import annotations

from modelstore.suggest import close_matches, did_you_mean

IDS = ["default", "k892-free", "k700-free", "l1405-flatte-free"]


def test_a_typo_finds_the_name() -> None:
    assert did_you_mean("defualt", IDS) == "; did you mean 'default'?"
    assert close_matches("k892free", IDS)[0] == "k892-free"


def test_case_is_ignored_and_the_known_spelling_returned() -> None:
    assert close_matches("gamma_k892", ["Gamma_K892", "m_K892"])[0] == "Gamma_K892"


def test_nothing_close_suggests_nothing() -> None:
    assert did_you_mean("zzzz", IDS) == ""
    assert did_you_mean("x", []) == ""


def test_the_word_itself_is_never_suggested() -> None:
    assert close_matches("default", IDS) == []


def test_several_suggestions() -> None:
    text = did_you_mean("k8-free", IDS, n=2)
    assert text.startswith("; did you mean 'k") and " or 'k" in text
