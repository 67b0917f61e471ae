"""Grades the self-check quiz: one test per question of ../quiz.toml, against ANSWERS in quiz_answers.py.

A failing test names the question, the answer you gave and the section of the course that teaches
it, and never the right answer: read the section, then answer again with `python -m lab quiz`,
which explains every answer as you go.
"""

from pathlib import Path

import pytest

from lab import load_task
from lab.quiz import QUESTIONS_FILE, Question, load_quiz, site_url

QUESTIONS = load_quiz(Path(__file__).resolve().parent.parent / QUESTIONS_FILE)

quiz_answers = load_task(__file__, "quiz_answers")


def given_answer(question: Question) -> str:
    """The learner's letter for ``question``; NotImplementedError while it is unanswered."""
    answers = getattr(quiz_answers, "ANSWERS", None)
    if not isinstance(answers, dict):
        pytest.fail('quiz_answers.py must define ANSWERS as a dict of question ids to letters, e.g. '
                    '{"45-publisher-confirms": "b"}', pytrace=False)
    if question.id not in answers:
        raise NotImplementedError(f"TODO: not answered yet: python -m lab quiz --day {question.day}")
    given = answers[question.id]
    if not isinstance(given, str) or given.strip().lower() not in question.letters:
        pytest.fail(f"your answer to {question.id} is {given!r}, which is not one of its choices: answer "
                    f"with one letter from {', '.join(question.letters)}", pytrace=False)
    return given.strip().lower()


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.id)
def test_answer(question):
    given = given_answer(question)
    if given != question.answer:
        # The message may name the question, the learner's own choice and where to read; not the answer.
        pytest.fail("\n".join([
            f"you answered {given}, which is not the right answer: read {question.link}",
            f"Question (Day {question.day}): {question.prompt}",
            f"Your answer: {given}) {question.choice(given)}",
            f"The section that teaches it: {question.link} (on the site: {site_url(question.link)})",
            f"Then answer again: python -m lab quiz --day {question.day}",
        ]), pytrace=False)
