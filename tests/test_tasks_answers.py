"""Scorers against hand-checked cases: numbers, MATH equivalence, DROP F1, option letters."""
from __future__ import annotations

import threading

import pytest

from w4s_jax.tasks.answers import (drop_f1_single, drop_normalize, extract_choice, math_reference_answer,
                                   parse_number, parse_target_number, score_choice, score_drop, score_math,
                                   score_number)


@pytest.mark.parametrize("prediction, target", [
    ("18", 18), ({"answer": "18"}, 18), (18, 18), (18.0, 18), ("18.00", 18),
    ("1,000", 1000), ("$1,234.50", 1234.5), ("1,234,567", 1234567), ("1{,}000", 1000),
    ("It costs 18 dollars.", 18), ("18 eggs per day", 18), ("€5", 5), ("$\\$18$", 18),
    ("The answer is 42 apples out of 50", 42), ("Answer: -3", -3), ("so the final answer is $\\boxed{70000}$.", 70000),
    ("\\boxed{\\frac{3}{4}}", 0.75), ("3/4", 0.75), ("-\\frac{1}{2}", -0.5), ("0.75", 3 / 4),
    ("-0", 0), ("0", -0.0), ("\u22127", -7), ("25%", 25), ("10\\%", 10),
    ("12,5", 12.5), ("1 000 000", 1000000), ("5e3", 5000),
    ("14053029.67", 14053029.666666666), ("0.33", 1 / 3), ("3244047.1", 3244047.0999999996),
    ("-9867630", -9867630.0), ([18], 18),
    ("None", "None"), ("none.", "None"), ({"answer": "Not enough information"}, "None"),
])
def test_numbers_that_match(prediction, target):
    assert score_number(prediction, target) == 1.0


@pytest.mark.parametrize("prediction, target", [
    ("17", 18), ("14053030", 14053029.666666666), ("0.3", 1 / 3), ("18.5", 18), ("eighteen", 18),
    ("", 18), (None, 18), ({"reasoning": "18"}, 18), ({"answer": None}, 18), (True, 1), ([18, 19], 18),
    ("3/0", 3), ("nan", 0), ("0", "None"), ("None", 0), ("I am not sure", 5),
    ("The answer is 40, not 42", 42),   # the number right after "answer is" wins
])
def test_numbers_that_do_not_match(prediction, target):
    assert score_number(prediction, target) == 0.0


def test_parse_number_reports_the_decimals_written():
    assert parse_number("7.50") == (7.5, 2)
    assert parse_number("There were 3 boxes with 12 each, 36 in total") == (36.0, 0)
    assert parse_number("no digits here") is None


@pytest.mark.parametrize("raw, value", [("18", 18), ("1,000", 1000), (23.0, 23), ("-3.5", -3.5),
                                        (3244047.0999999996, 3244047.0999999996), ("$70,000", 70000),
                                        ("50%", 50), ("3/4", 0.75), ("-1/2", -0.5)])
def test_targets_parse(raw, value):
    got = parse_target_number(raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("raw", ["", "about 5", "5 or 6", None, True, "inf", "3/0", "1/2/3"])
def test_unparsable_targets_are_refused(raw):
    with pytest.raises(ValueError, match="unparsable target"):
        parse_target_number(raw)


# ------------------------------------------------------------------------------------------ MATH

@pytest.mark.parametrize("reference, prediction", [
    ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "1/2"), ("\\frac12", "\\dfrac{1}{2}"),
    ("2\\sqrt{5}", "\\sqrt{20}"), ("(1,-2)", "(1, -2)"), ("x^2+2x", "x(x+2)"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"), ("5", "The answer is $\\boxed{5}$."),
    ("\\text{(C)}", "C"), ("1,000", "1000"), ("\\$18", "18"), ("\\{1,2\\}", "\\{2,1\\}"),
    ("-0", "0"), ("3", {"answer": "3"}), ("3", 3),
])
def test_math_equivalent_forms(reference, prediction):
    assert score_math(prediction, reference) == 1.0


@pytest.mark.parametrize("reference, prediction", [
    ("8", "18"), ("\\frac{1}{2}", "\\frac{1}{3}"), ("3\\sqrt{2}", "4.2426"), ("10", "ten"),
    ("5", ""), ("5", None), ("5", {"reasoning": "5"}),
])
def test_math_non_equivalent(reference, prediction):
    assert score_math(prediction, reference) == 0.0


def test_math_scores_off_the_main_thread_too():
    out = []
    t = threading.Thread(target=lambda: out.append(score_math("\\frac{2}{4}", "\\frac{1}{2}")))
    t.start()
    t.join()
    assert out == [1.0]


def test_math_reference_answer_takes_the_last_balanced_box():
    sol = "First $\\boxed{1}$ is wrong. So the answer is $\\boxed{\\frac{\\sqrt{3}}{2}}$."
    assert math_reference_answer(sol) == "\\frac{\\sqrt{3}}{2}"
    assert math_reference_answer("no box here") is None


# ------------------------------------------------------------------------------------------ DROP

def test_drop_normalisation():
    assert drop_normalize("The Eagles!") == "eagles"
    assert drop_normalize("2.0") == drop_normalize("2") == "2.0"
    assert drop_normalize("well-known, a fact") == "well known fact"


@pytest.mark.parametrize("prediction, references, f1", [
    ("Pakistanis and Filipinos", ["Pakistanis and Filipinos", "Pakistani and Filipino"], 1.0),
    ("Pakistani and Filipino.", ["Pakistanis and Filipinos"], 0.33),   # only "and" in common
    ("the Eagles", ["Eagles"], 1.0),
    ("40", ["40.0"], 1.0),
    ("41", ["40"], 0.0),
    ("40 yards", ["40"], 0.67),
    ("12 yards", ["13 yards"], 0.0),             # shares "yards" but not the number: no credit
    # token sets: 8 of the 10 distinct gold tokens, all 8 predicted ones right: 2 * 0.8 / 1.8
    ("under the age of 18 and 25 to 44", ["under the age of 18 and 25 to 44 and 45 to 64"], 0.89),
    ({"answer": "crack"}, ["crack"], 1.0),
    ("", ["crack"], 0.0), (None, ["crack"], 0.0),
])
def test_drop_f1(prediction, references, f1):
    assert score_drop(prediction, references) == pytest.approx(f1)


def test_drop_multi_span_bags_are_aligned_one_to_one():
    assert drop_f1_single(["Tony Romo", "Shaun Hill"], ["Shaun Hill", "Tony Romo"]) == 1.0
    # one span right, one missing: mean over the larger number of spans
    assert drop_f1_single(["Tony Romo"], ["Shaun Hill", "Tony Romo"]) == 0.5
    # a duplicate prediction cannot be matched twice
    assert drop_f1_single(["Tony Romo", "Tony Romo"], ["Shaun Hill", "Tony Romo"]) == 0.5
    # numbers and words across spans: 2 matches 2, 5 yards vs 5: 0.67
    assert drop_f1_single(["5 yards", "2"], ["2", "5"]) == pytest.approx(round((1.0 + 2 / 3) / 2, 2))
    assert score_drop({"answer": ["Romo", "Hill"]}, [["Hill", "Romo"], "nobody"]) == 1.0


# ------------------------------------------------------------------------------------------ letters

@pytest.mark.parametrize("prediction, letter", [
    ("C", "C"), ("(c)", "C"), ("C.", "C"), ("**D**", "D"), ("The answer is (C).", "C"), ("Answer: B", "B"),
    ("The correct answer is: J", "J"), ("B. 42 apples", "B"), ("I pick option E.", "E"),
    ("A is wrong because ..., so (H)", "H"), ({"answer": "(G)"}, "G"), ("answer is I", "I"),
])
def test_letters_in_prose(prediction, letter):
    assert extract_choice(prediction, n_options=10) == letter


@pytest.mark.parametrize("prediction", ["The answer is a bit unclear", "A good guess", "K", "(K)", "", None,
                                         "The answer is K", {"reasoning": "C"}])
def test_no_clear_letter(prediction):
    assert extract_choice(prediction, n_options=10) is None


def test_letters_beyond_the_options_and_option_text():
    assert extract_choice("E", n_options=4) is None
    options = ["London", "Paris", "Rome", "Berlin"]
    assert extract_choice("paris.", options) == "B"
    assert score_choice({"answer": "Paris"}, "B", options) == 1.0
    assert score_choice("The answer is (C)", "C", options) == 1.0
    assert score_choice("The answer is (C)", "B", options) == 0.0
