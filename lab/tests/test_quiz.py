"""The self-check quiz: its questions, its links into the site, the interactive session and its grading."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import pytest

from lab import cli, quiz
from lab.course import ROOT, load_course
from lab.runner import run_pytest

DAY = ROOT / "Day-49-Revision"
QUESTIONS = quiz.load_quiz(DAY / quiz.QUESTIONS_FILE)
BY_ID = {q.id: q for q in QUESTIONS}
MINIMUM = {43: 6, 44: 6, 45: 6, 46: 6, 47: 6, 48: 4}


# ------------------------------------------------------------------------------ the questions


def test_every_day_has_its_questions():
    counts = Counter(q.day for q in QUESTIONS)
    short = {day: counts[day] for day, least in MINIMUM.items() if counts[day] < least}
    assert not short, f"days with too few questions (day: count): {short}; each needs {MINIMUM}"


def test_every_link_names_an_existing_page_and_section():
    problems = quiz.link_problems(QUESTIONS, ROOT)
    assert not problems, "links in quiz.toml that the site cannot resolve:\n" + "\n".join(problems)


@pytest.mark.parametrize(("page", "anchor", "title"), [
    ("Day-45-Event-Driven/notes.md", "43-unroutable-messages-mandatory-and-basicreturn",
     "4.3 Unroutable messages: mandatory and basic.return"),
    ("Day-45-Event-Driven/notes.md", "8-publishsubscribe-three-ways", "8. Publish/subscribe three ways"),
    ("Day-46-Authentication/notes.md", "62-rs256hs256-confusion", "6.2 RS256/HS256 confusion"),
    ("Day-46-Authentication/notes.md", "what-mtls-proves-and-what-it-does-not", "What mTLS proves, and what it does not"),
    ("Day-47-Observability/notes.md", "46-multiprocess-servers-gunicorn-and-prometheus_multiproc_dir",
     "4.6 Multiprocess servers: gunicorn and PROMETHEUS_MULTIPROC_DIR"),
])
def test_anchors_are_the_ids_the_site_gives_headings(page, anchor, title):
    """Ids read off the built site (`mkdocs build`) for headings with code, slashes and sub-levels."""
    assert quiz.page_anchors(ROOT / page).get(anchor) == title


def test_the_reference_answers_every_question_right():
    reference = quiz.read_answers(DAY / "solutions" / f"{quiz.ANSWERS_MODULE}.py")
    assert reference == {q.id: q.answer for q in QUESTIONS}, (
        "solutions/quiz_answers.py must hold exactly the answers of quiz.toml: "
        f"missing {sorted(set(BY_ID) - set(reference))}, wrong or unknown "
        f"{sorted(k for k, v in reference.items() if k not in BY_ID or BY_ID[k].answer != v)}")


def test_the_stub_ships_empty():
    if (ROOT / ".lab-student-edition").exists():
        pytest.skip("a learner's copy: the answers are theirs")
    stub = DAY / "tasks" / f"{quiz.ANSWERS_MODULE}.py"
    assert quiz.read_answers(stub) == {}, (
        f"{stub.relative_to(ROOT)} holds answers: someone took the quiz in the course's own copy; restore the "
        "empty ANSWERS before committing")
    assert "TODO" in stub.read_text(encoding="utf-8")


def test_the_right_answer_cannot_be_guessed_from_its_place_or_length():
    letters = Counter(q.answer for q in QUESTIONS)
    assert max(letters.values()) <= 0.4 * len(QUESTIONS), f"the right answers are bunched on one letter: {letters}"
    longest = [q.id for q in QUESTIONS
               if len(q.choice(q.answer)) > max(len(c) for c in q.choices if c != q.choice(q.answer))]
    assert len(longest) <= len(QUESTIONS) / 2, (
        f"the right choice is the longest in {len(longest)} of {len(QUESTIONS)} questions: make the wrong "
        f"choices as specific as the right one, e.g. in {longest[:5]}")


def good_question(**changes) -> dict:
    entry = {"id": "45-example", "day": 45, "prompt": "Why?", "choices": ["One", "Two", "Three"], "answer": "b",
             "explanation": "Because.", "link": "Day-45-Event-Driven/notes.md#41-publisher-confirms"}
    return {**entry, **changes}


def a_quiz(*entries) -> dict:
    others = [good_question(id=f"{day}-example", day=day) for day in quiz.DAYS if day != 45]
    return {"question": [*entries, *others]}


@pytest.mark.parametrize(("data", "expected"), [
    (a_quiz(good_question()), None),
    (a_quiz(good_question(), good_question()), "id '45-example' is used twice"),
    (a_quiz(good_question(answer="d")), "answer must be the letter of one of its choices (a, b, c)"),
    (a_quiz(good_question(choices=["One", "Two"])), "choices must be a list of 3 to 5"),
    (a_quiz(good_question(choices=["One", "Two", "one"])), "two choices say the same thing"),
    (a_quiz(good_question(id="44-example")), "id '44-example' must start with its day, 45"),
    (a_quiz(good_question(id="45 Example")), "id must look like"),
    (a_quiz(good_question(day=42, id="42-example")), "day must be one of 43-48"),
    (a_quiz(good_question(link="https://example.com/notes")), "link must be a page path"),
    (a_quiz(good_question(link="Day-45-Event-Driven/notes.md")), "must name the section"),
    (a_quiz(good_question(hint="psst")), "unknown field 'hint'"),
    (a_quiz(good_question(explanation=" ")), "explanation must be non-empty text"),
    ({"question": [good_question()]}, "no question for Day 43"),
    ({}, "no [[question]] tables"),
])
def test_validation_reports_each_mistake(data, expected):
    problems = quiz.quiz_problems(data)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), f"expected a problem with {expected!r}, got {problems}"


def test_link_problems_name_a_missing_page_or_section():
    broken = [quiz.Question("45-a", 45, "?", ("x", "y", "z"), "a", ".", "Day-45-Event-Driven/notes.md#41-confirms"),
              quiz.Question("45-b", 45, "?", ("x", "y", "z"), "a", ".", "Day-45-Event-Driven/nope.md#x")]
    problems = quiz.link_problems(broken, ROOT)
    assert "45-a: Day-45-Event-Driven/notes.md has no heading with the id #41-confirms" in problems[0]
    assert "41-publisher-confirms" in problems[0], "the message should suggest the anchor that was meant"
    assert problems[1] == "45-b: Day-45-Event-Driven/nope.md does not exist"


@pytest.mark.parametrize(("link", "url"), [
    ("Day-45-Event-Driven/notes.md#41-publisher-confirms", "http://127.0.0.1:8000/Day-45-Event-Driven/notes/#41-publisher-confirms"),
    ("Day-48-Mini-Project/PROJECT-GUIDE.md", "http://127.0.0.1:8000/Day-48-Mini-Project/PROJECT-GUIDE/"),
    ("Day-49-Revision/tasks/README.md", "http://127.0.0.1:8000/Day-49-Revision/tasks/"),
    ("README.md#quick-start", "http://127.0.0.1:8000/#quick-start"),
])
def test_site_url_follows_the_sites_directory_urls(link, url, monkeypatch):
    monkeypatch.delenv("LAB_SITE_URL", raising=False)
    assert quiz.site_url(link) == url
    monkeypatch.setenv("LAB_SITE_URL", "https://course.example/week7")
    assert quiz.site_url(link) == url.replace("http://127.0.0.1:8000", "https://course.example/week7")


# ------------------------------------------------------------------------------ the answers file


@pytest.fixture
def answers_file(tmp_path) -> Path:
    """A copy of the learner's empty stub."""
    path = tmp_path / f"{quiz.ANSWERS_MODULE}.py"
    shutil.copyfile(DAY / "tasks" / path.name, path)
    return path


def test_answers_file_round_trips_sorted_with_its_docstring(answers_file):
    docstring = answers_file.read_text(encoding="utf-8").split('"""')[1]
    quiz.write_answers(answers_file, {"47-burn-rate": "c", "43-chain-availability": "a"})
    text = answers_file.read_text(encoding="utf-8")
    assert text == (f'"""{docstring}"""\n\nANSWERS: dict[str, str] = {{\n'
                    '    "43-chain-availability": "a",\n    "47-burn-rate": "c",\n}\n')
    assert quiz.read_answers(answers_file) == {"43-chain-availability": "a", "47-burn-rate": "c"}
    namespace: dict = {}
    exec(compile(text, str(answers_file), "exec"), namespace)  # the module the grader imports
    assert namespace["ANSWERS"] == {"43-chain-availability": "a", "47-burn-rate": "c"}
    quiz.write_answers(answers_file, quiz.read_answers(answers_file))
    assert answers_file.read_text(encoding="utf-8") == text, "rewriting the same answers must not change the file"
    quiz.write_answers(answers_file, {})
    assert answers_file.read_text(encoding="utf-8") == (DAY / "tasks" / answers_file.name).read_text(encoding="utf-8")


@pytest.mark.parametrize("docstring", ['Mine, with a \\\\ backslash and a "quote"', 'Ends in a "quote"'])
def test_any_docstring_survives_a_rewrite(answers_file, docstring):
    answers_file.write_text(f"{docstring!r}\nANSWERS = {{}}\n")  # any valid docstring, escapes and all
    original = quiz.ast.get_docstring(quiz.ast.parse(answers_file.read_text()), clean=False)
    quiz.write_answers(answers_file, {"43-chain-availability": "b"})
    rewritten = quiz.ast.get_docstring(quiz.ast.parse(answers_file.read_text()), clean=False)
    assert rewritten.rstrip() == original.rstrip()
    assert quiz.read_answers(answers_file) == {"43-chain-availability": "b"}


@pytest.mark.parametrize(("text", "expected"), [
    ("ANSWERS = {\n", "is not valid Python"),
    ("ANSWERS = dict(a='b')\n", "plain dict literal"),
    ("ANSWERS = {'45-x': 2}\n", "must map question ids to letters"),
])
def test_a_broken_answers_file_is_reported_not_overwritten(tmp_path, text, expected):
    path = tmp_path / "quiz_answers.py"
    path.write_text(text)
    with pytest.raises(quiz.QuizError, match=expected):
        quiz.read_answers(path)


# ------------------------------------------------------------------------------ a session


def session(answers_file: Path, questions: list[quiz.Question], typed: str) -> str:
    out = io.StringIO()
    assert quiz.run_session(questions, answers_file, ROOT, io.StringIO(typed), out, all_questions=QUESTIONS) == 0
    return out.getvalue()


def wrong_letter(q: quiz.Question) -> str:
    return next(letter for letter in q.letters if letter != q.answer)


def test_a_piped_session_explains_each_answer_and_records_it(answers_file):
    first, second = quiz.select(QUESTIONS, day=45, count=2)
    output = session(answers_file, [first, second], f"{first.answer}\n{wrong_letter(second)}\n")
    assert "Question 1 of 2 · Day 45 · 45-publisher-confirms" in output
    assert f"Your answer (a-d; s to skip, q to stop): {first.answer}\n" in output, "piped answers are echoed"
    assert f"✓ Right: {first.answer}." in output
    wrong = f"✗ Not quite: you answered {wrong_letter(second)}; the right answer is {second.answer})"
    assert wrong in output
    flat = " ".join(output.split())
    for q in (first, second):
        assert " ".join(q.explanation.split()[:12]) in flat, f"the explanation of {q.id} is not shown"
        assert quiz.site_url(q.link) in output, f"the site address of {q.id}'s section is not shown"
    assert ('\n  in the repository: Day-45-Event-Driven/notes.md, section "4.1 Publisher confirms"\n' in output), (
        "offline learners need the file and the section's title, on one line")
    assert quiz.read_answers(answers_file) == {first.id: first.answer, second.id: wrong_letter(second)}
    assert "This session: 1 of 2 right." in output
    assert f"Overall: 2 of {len(QUESTIONS)} questions answered, 1 right." in output


def test_a_new_answer_replaces_the_old_one_and_keeps_the_others(answers_file):
    q = BY_ID["46-401-or-403"]
    quiz.write_answers(answers_file, {"43-cqrs-read-model": "a", q.id: wrong_letter(q)})
    session(answers_file, [q], f"{q.answer}\n")
    assert quiz.read_answers(answers_file) == {"43-cqrs-read-model": "a", q.id: q.answer}


def test_bad_input_asks_again_skip_and_end_of_input_stop_cleanly(answers_file):
    first, second, third = quiz.select(QUESTIONS, day=44, count=3)
    output = session(answers_file, [first, second, third], f"z\nab\n\n{first.answer.upper()}\ns\n")
    assert output.count("Answer with one letter from a-d, s to skip or q to stop.") == 3
    assert "Stopped; the answers so far are saved." in output, "the end of the input ends the quiz"
    assert quiz.read_answers(answers_file) == {first.id: first.answer}, "a skipped question records nothing"
    assert "This session: 1 of 1 right, 1 skipped." in output


def test_hand_written_answers_survive_a_session(answers_file):
    q = BY_ID["47-burn-rate"]
    answers_file.write_text('"""Mine."""\nANSWERS = {"45-Typo": "B", "43-cqrs-read-model": " B "}\n')
    output = session(answers_file, [q], f"{q.answer}\n")
    assert quiz.read_answers(answers_file) == {"45-Typo": "B", "43-cqrs-read-model": " B ", q.id: q.answer}
    assert answers_file.read_text().startswith('"""Mine."""')
    right = int(BY_ID["43-cqrs-read-model"].answer == "b")
    assert f"Overall: 2 of {len(QUESTIONS)} questions answered, {1 + right} right." in output


def test_q_stops_before_the_first_question_is_recorded(answers_file):
    output = session(answers_file, QUESTIONS[:2], "q\n")
    assert "Stopped" in output and quiz.read_answers(answers_file) == {}


def test_select_filters_counts_and_shuffles_reproducibly():
    assert {q.day for q in quiz.select(QUESTIONS, day=47)} == {47}
    assert len(quiz.select(QUESTIONS, count=3)) == 3
    assert quiz.select(QUESTIONS, seed=7) == quiz.select(QUESTIONS, seed=7) != QUESTIONS
    assert sorted(q.id for q in quiz.select(QUESTIONS, shuffle=True)) == sorted(BY_ID)


# ------------------------------------------------------------------------------ the command


@pytest.fixture
def course(tmp_path):
    """A course whose Day 49 has the real quiz and an empty answers file."""
    root = tmp_path / "course"
    (root / "Day-49-Revision" / "tasks").mkdir(parents=True)
    shutil.copyfile(DAY / "quiz.toml", root / "Day-49-Revision" / "quiz.toml")
    for name in ("quiz_answers.py", "tasks.toml"):
        shutil.copyfile(DAY / "tasks" / name, root / "Day-49-Revision" / "tasks" / name)
    return load_course(root)


@pytest.fixture
def lab(course, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_course", lambda: load_course(course.root))

    def run(*argv: str, typed: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(typed))
        code = cli.main(["quiz", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_the_quiz_command_records_answers_that_list_then_shows(lab, course):
    day45 = [q for q in QUESTIONS if q.day == 45]
    code, out, _ = lab("--day", "45", "--count", "2", typed=f"{day45[0].answer}\n{wrong_letter(day45[1])}\n")
    assert code == 0 and "Question 2 of 2 · Day 45" in out and "Question 3" not in out
    answers = quiz.read_answers(course.root / "Day-49-Revision" / "tasks" / "quiz_answers.py")
    assert answers == {day45[0].id: day45[0].answer, day45[1].id: wrong_letter(day45[1])}
    code, out, _ = lab("--list")
    assert code == 0
    assert "Day 45: 2 of " in out and f"[x] {day45[0].id}" in out and f"[ ] {day45[2].id}" in out
    assert "Day 43: 0 of " in out and f"2 of {len(QUESTIONS)} questions answered" in out


def test_the_quiz_command_refuses_a_day_without_questions(lab):
    code, _, err = lab("--day", "42")
    assert code == 2 and "no questions for day 42" in err
    code, _, err = lab("--count", "0")
    assert code == 2 and "--count must be at least 1" in err


def test_the_quiz_command_reports_a_broken_answers_file_without_touching_it(lab, course):
    path = course.root / "Day-49-Revision" / "tasks" / "quiz_answers.py"
    path.write_text("ANSWERS = {\n")
    code, _, err = lab("--day", "43", typed="a\n")
    assert code == 2 and "is not valid Python" in err
    assert path.read_text() == "ANSWERS = {\n"


# ------------------------------------------------------------------------------ grading


def test_grading_names_the_section_but_never_the_right_answer(tmp_path):
    """The task's own tests, run as the grader runs them, on answers that are wrong, invalid or missing."""
    wrong = [q for q in QUESTIONS if q.day in (44, 46)]
    answers = {q.id: wrong_letter(q) for q in wrong} | {QUESTIONS[0].id: "z"}
    submission = tmp_path / "submission"
    module = submission / DAY.name / "tasks" / f"{quiz.ANSWERS_MODULE}.py"
    module.parent.mkdir(parents=True)
    module.write_text(f"ANSWERS = {answers!r}\n")
    results, error = run_pytest([DAY / "tasks" / "test_quiz_answers.py"], {"LAB_SUBMISSION": str(submission)}, 60, ROOT)
    assert not error, error
    by_id = {r.nodeid.rsplit("[", 1)[-1].rstrip("]"): r for r in results}
    assert set(by_id) == set(BY_ID) and all(r.outcome == "failed" for r in results)
    for q in wrong:
        message = by_id[q.id].message
        assert message.splitlines()[0] == f"you answered {wrong_letter(q)}, which is not the right answer: read {q.link}"
        assert q.prompt in message and q.choice(wrong_letter(q)) in message
        assert q.choice(q.answer) not in message, f"the failure of {q.id} gives the right answer away"
        assert q.explanation not in message
    assert "which is not one of its choices" in by_id[QUESTIONS[0].id].message
    unanswered = [r for qid, r in by_id.items() if qid not in answers]
    assert all("NotImplementedError" in r.message and "not answered yet" in r.message for r in unanswered), (
        "unanswered questions must read as not started, like a stub's NotImplementedError")


def test_the_quiz_is_day_49s_only_task_worth_100_points():
    day = next(d for d in load_course().days if d.number == quiz.QUIZ_DAY)
    assert [(t.id, t.module, t.points) for t in day.tasks] == [("quiz", quiz.ANSWERS_MODULE, 100)]
