"""Grades the self-check quiz: one test per question of ../quiz.toml, against ANSWERS in quiz_answers.py.

quiz_answers.py is read, never run: ANSWERS must be a plain dict literal (which is what
`python -m lab quiz` writes). Each answer is checked against the question's sealed digest in
quiz.toml, so grading needs no answer key. A failing test names the question, the answer you gave
and the section of the course that teaches it, and never the right answer: read the section, then
answer again with `python -m lab quiz`, which explains every right answer as you go.
"""

from functools import cache
from pathlib import Path

import pytest

from lab.quiz import ANSWERS_MODULE, QUESTIONS_FILE, Question, QuizError, load_quiz, read_answers, site_url
from lab.target import task_file

QUESTIONS = load_quiz(Path(__file__).resolve().parent.parent / QUESTIONS_FILE)

ANSWERS_FILE = task_file(__file__, ANSWERS_MODULE)


@cache
def learner_answers() -> dict[str, str] | str:
    """ANSWERS of quiz_answers.py, or why the file cannot be graded."""
    try:
        return read_answers(ANSWERS_FILE, required=True)
    except QuizError as error:
        return str(error)


def given_answer(question: Question) -> str:
    """The learner's letter for ``question``; NotImplementedError while it is unanswered."""
    answers = learner_answers()
    if isinstance(answers, str):
        pytest.fail(answers, pytrace=False)
    if question.id not in answers:
        raise NotImplementedError(f"TODO: not answered yet: python -m lab quiz --day {question.day}")
    given = answers[question.id].strip().lower()
    if given not in question.letters:
        pytest.fail(f"your answer to {question.id} is {answers[question.id]!r}, which is not one of its choices: "
                    f"answer with one letter from {', '.join(question.letters)}", pytrace=False)
    return given


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.id)
def test_answer(question):
    given = given_answer(question)
    if not question.is_right(given):
        # The message may name the question, the learner's own choice and where to read; not the answer.
        pytest.fail("\n".join([
            f"you answered {given}, which is not the right answer: read {question.link}",
            f"Question (Day {question.day}): {question.prompt}",
            f"Your answer: {given}) {question.choice(given)}",
            f"The section that teaches it: {question.link} (on the site: {site_url(question.link)})",
            f"Then answer again: python -m lab quiz --day {question.day}",
        ]), pytrace=False)
