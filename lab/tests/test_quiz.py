"""The self-check quiz: its questions, its seals and key, its links into the site, the session and its grading.

Only the checks of the answer key itself need Day-49-Revision/solutions/quiz_key.toml; they skip in
the student edition, which has none. Every other test seals the questions again with answers of
its own (PRACTICE_KEY), so it knows which letters are right without the key, and says none of the
real answers.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from lab import cli, quiz
from lab.course import ROOT, load_course
from lab.runner import run_pytest

DAY = ROOT / "Day-49-Revision"
QUESTIONS = quiz.load_quiz(DAY / quiz.QUESTIONS_FILE)
BY_ID = {q.id: q for q in QUESTIONS}
KEY_PATH = DAY / quiz.KEY_FILE
MINIMUM = {43: 6, 44: 6, 45: 6, 46: 6, 47: 6, 48: 4}

# The tests' own answers: a letter that depends on the question's place only, and an explanation.
PRACTICE_SALT = "0123456789abcdef0123456789abcdef"
PRACTICE_KEY = {q.id: quiz.KeyEntry(q.letters[(number * 3 + 1) % len(q.letters)], f"Practice explanation of {q.id}.")
                for number, q in enumerate(QUESTIONS)}


def practice(q: quiz.Question) -> quiz.Question:
    """``q`` sealed with PRACTICE_KEY's answer instead of the real one."""
    entry = PRACTICE_KEY[q.id]
    return dataclasses.replace(q, salt=PRACTICE_SALT, answer_sha256=quiz.answer_digest(PRACTICE_SALT, q.id, entry.answer),
                               explanation_sealed=quiz.seal_explanation(entry.explanation, PRACTICE_SALT, q.id,
                                                                        entry.answer))


PRACTICE = [practice(q) for q in QUESTIONS]
PRACTICE_BY_ID = {q.id: q for q in PRACTICE}


def right_letter(q: quiz.Question) -> str:
    return PRACTICE_KEY[q.id].answer


def wrong_letter(q: quiz.Question, nth: int = 0) -> str:
    return [letter for letter in q.letters if letter != right_letter(q)][nth]


@pytest.fixture(scope="module")
def key() -> dict[str, quiz.KeyEntry]:
    """The real answer key, in the full course only."""
    if not KEY_PATH.is_file():
        pytest.skip(f"{quiz.KEY_FILE} is only in the full course; the student edition has no answer key")
    return quiz.load_key(KEY_PATH, {q.id: len(q.choices) for q in QUESTIONS})


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


def test_quiz_toml_holds_no_answer_in_the_clear():
    text = (DAY / quiz.QUESTIONS_FILE).read_text(encoding="utf-8")
    fields = re.findall(r"(?m)^(answer|explanation)\s*=", text)
    assert not fields, f"quiz.toml ships to learners but has {fields[0]} fields: they belong in {quiz.KEY_FILE}"


def test_the_stub_ships_empty():
    if (ROOT / ".lab-student-edition").exists():
        pytest.skip("a learner's copy: the answers are theirs")
    stub = DAY / "tasks" / f"{quiz.ANSWERS_MODULE}.py"
    assert quiz.read_answers(stub) == {}, (
        f"{stub.relative_to(ROOT)} holds answers: someone took the quiz in the course's own copy; restore the "
        "empty ANSWERS before committing")
    assert "TODO" in stub.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ the key (full course)


def test_the_seals_and_the_reference_are_in_step_with_the_key(key):
    problems = quiz.seal_problems(DAY)
    assert not problems, "\n".join(problems)


def test_each_seal_opens_with_the_keys_letter_and_no_other(key):
    for q in QUESTIONS:
        right = key[q.id].answer
        assert q.is_right(right), f"{q.id}: the key's answer {right} does not match answer_sha256"
        assert q.explanation(right) == quiz.reflow(key[q.id].explanation), f"{q.id}: the explanation does not open"
        others = [letter for letter in q.letters if letter != right]
        assert not any(q.is_right(letter) or q.explanation(letter) for letter in others), f"{q.id}: two letters open"


def test_the_reference_answers_are_the_keys(key):
    reference = quiz.read_answers(DAY / quiz.REFERENCE_FILE)
    assert reference == {qid: entry.answer for qid, entry in key.items()}, (
        f"{quiz.REFERENCE_FILE} must hold exactly the answers of {quiz.KEY_FILE}: run `{quiz.SEAL_COMMAND}`")


def test_no_explanation_is_in_the_clear_in_quiz_toml(key):
    text = " ".join((DAY / quiz.QUESTIONS_FILE).read_text(encoding="utf-8").split())
    shown = [qid for qid, entry in key.items() if " ".join(entry.explanation.split()[:10]) in text]
    assert not shown, f"quiz.toml shows the explanations of {shown[:5]} in the clear"


def test_the_right_answer_cannot_be_guessed_from_its_place_or_length(key):
    letters = Counter(entry.answer for entry in key.values())
    assert max(letters.values()) <= 0.4 * len(QUESTIONS), f"the right answers are bunched on one letter: {letters}"
    longest = [q.id for q in QUESTIONS
               if len(q.choice(key[q.id].answer)) > max(len(c) for c in q.choices if c != q.choice(key[q.id].answer))]
    assert len(longest) <= len(QUESTIONS) / 2, (
        f"the right choice is the longest in {len(longest)} of {len(QUESTIONS)} questions: make the wrong "
        f"choices as specific as the right one, e.g. in {longest[:5]}")


# ------------------------------------------------------------------------------ validation

SEALS = {"answer_sha256": "0" * 64, "explanation_sealed": "c2VhbGVk"}


def good_question(**changes) -> dict:
    entry = {"id": "45-example", "day": 45, "prompt": "Why?", "choices": ["One", "Two", "Three"],
             "link": "Day-45-Event-Driven/notes.md#41-publisher-confirms", **SEALS}
    return {key: value for key, value in {**entry, **changes}.items() if value is not None}


def a_quiz(*entries, salt: str | None = PRACTICE_SALT) -> dict:
    others = [good_question(id=f"{day}-example", day=day) for day in quiz.DAYS if day != 45]
    return {"question": [*entries, *others], **({quiz.SALT_FIELD: salt} if salt else {})}


@pytest.mark.parametrize(("data", "expected"), [
    (a_quiz(good_question()), None),
    (a_quiz(good_question(), good_question()), "id '45-example' is used twice"),
    (a_quiz(good_question(choices=["One", "Two"])), "choices must be a list of 3 to 5"),
    (a_quiz(good_question(choices=["One", "Two", "one"])), "two choices say the same thing"),
    (a_quiz(good_question(id="44-example")), "id '44-example' must start with its day, 45"),
    (a_quiz(good_question(id="45 Example")), "id must look like"),
    (a_quiz(good_question(day=42, id="42-example")), "day must be one of 43-48"),
    (a_quiz(good_question(link="https://example.com/notes")), "link must be a page path"),
    (a_quiz(good_question(link="Day-45-Event-Driven/notes.md")), "must name the section"),
    (a_quiz(good_question(hint="psst")), "unknown field 'hint'"),
    (a_quiz(good_question(prompt=" ")), "prompt must be non-empty text"),
    (a_quiz(good_question(answer="b")), "'answer' belongs in solutions/quiz_key.toml, not in quiz.toml"),
    (a_quiz(good_question(explanation="Because.")), "'explanation' belongs in solutions/quiz_key.toml"),
    (a_quiz(good_question(answer_sha256=None)), "missing field 'answer_sha256': run `python -m lab.quiz --seal`"),
    (a_quiz(good_question(answer_sha256="B" * 64)), "answer_sha256 must be 64 lowercase hex digits"),
    (a_quiz(good_question(explanation_sealed="not base64!")), "explanation_sealed must be base64 text"),
    (a_quiz(good_question(), salt=None), "seal_salt must be 32 lowercase hex digits"),
    ({"question": [good_question()]}, "no question for Day 43"),
    ({}, "no [[question]] tables"),
])
def test_validation_reports_each_mistake(data, expected):
    problems = quiz.quiz_problems(data)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), f"expected a problem with {expected!r}, got {problems}"


def test_before_sealing_the_seals_may_be_missing():
    unsealed = a_quiz(good_question(answer_sha256=None, explanation_sealed=None), salt=None)
    assert quiz.quiz_problems(unsealed, sealed=False) == []
    assert quiz.quiz_problems(unsealed)


@pytest.mark.parametrize(("key", "expected"), [
    ({"45-example": {"answer": "b", "explanation": "Because."}}, None),
    ({"45-example": {"answer": "d", "explanation": "Because."}}, "answer must be the letter of one of its choices (a, b, c)"),
    ({"45-example": {"answer": "b", "explanation": " "}}, "explanation must be non-empty text"),
    ({"45-example": {"answer": "b"}}, "must hold exactly answer and explanation"),
    ({}, "no entry for question '45-example'"),
    ({"45-example": {"answer": "b", "explanation": "."}, "45-other": {"answer": "a", "explanation": "."}},
     "[45-other]: quiz.toml has no question with this id"),
])
def test_key_validation_reports_each_mistake(key, expected):
    problems = quiz.key_problems(key, {"45-example": 3})
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), f"expected a problem with {expected!r}, got {problems}"


def test_link_problems_name_a_missing_page_or_section():
    q = PRACTICE[0]
    broken = [dataclasses.replace(q, id="45-a", link="Day-45-Event-Driven/notes.md#41-confirms"),
              dataclasses.replace(q, id="45-b", link="Day-45-Event-Driven/nope.md#x")]
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


# ------------------------------------------------------------------------------ the seals


def test_a_seal_opens_with_its_letter_only_and_hides_its_text():
    q = PRACTICE_BY_ID["45-publisher-confirms"]
    assert [letter for letter in q.letters if q.is_right(letter)] == [right_letter(q)]
    assert q.explanation(right_letter(q)) == PRACTICE_KEY[q.id].explanation
    assert q.explanation(wrong_letter(q)) is None and q.explanation("z") is None
    assert "Practice" not in quiz.base64.b64decode(q.explanation_sealed).decode("latin-1")
    assert quiz.answer_digest(PRACTICE_SALT, q.id, "a") != quiz.answer_digest(PRACTICE_SALT, "45-other", "a"), (
        "the digest must depend on the question, or one question's answer would give another's away")
    assert quiz.answer_digest(PRACTICE_SALT, q.id, "a") != quiz.answer_digest("f" * 32, q.id, "a")


def day_with_a_key(root: Path, key: dict[str, quiz.KeyEntry], quiz_text: str | None = None) -> Path:
    """A Day 49 folder with the real questions (or ``quiz_text``) and ``key`` as its solutions/quiz_key.toml."""
    day = root / DAY.name
    (day / "solutions").mkdir(parents=True)
    (day / quiz.QUESTIONS_FILE).write_text(quiz_text or (DAY / quiz.QUESTIONS_FILE).read_text(encoding="utf-8"),
                                           encoding="utf-8")
    tables = [f'[{qid}]\nanswer = "{entry.answer}"\nexplanation = """\n{entry.explanation}\n"""\n'
              for qid, entry in key.items()]
    (day / quiz.KEY_FILE).write_text("\n".join(tables), encoding="utf-8")
    return day


def without_seals(text: str) -> str:
    return quiz.SEALED_LINES.sub("", text)


def test_sealing_writes_seals_from_the_key_and_nothing_else(tmp_path):
    day = day_with_a_key(tmp_path, PRACTICE_KEY)
    original = (day / quiz.QUESTIONS_FILE).read_text(encoding="utf-8")
    assert quiz.seal(day) == [day / quiz.QUESTIONS_FILE, day / quiz.REFERENCE_FILE]
    sealed = (day / quiz.QUESTIONS_FILE).read_text(encoding="utf-8")
    assert without_seals(sealed) == without_seals(original), "sealing changed more than the sealed fields"
    for q in quiz.load_quiz(day / quiz.QUESTIONS_FILE):
        assert q.salt == QUESTIONS[0].salt, "sealing must keep the course's salt"
        assert q.is_right(right_letter(q)) and q.explanation(right_letter(q)) == PRACTICE_KEY[q.id].explanation
        assert not q.is_right(wrong_letter(q))
    assert quiz.read_answers(day / quiz.REFERENCE_FILE) == {qid: entry.answer for qid, entry in PRACTICE_KEY.items()}
    assert quiz.seal_problems(day) == []
    assert quiz.seal(day) == [], "sealing twice must change nothing the second time"


def test_seals_out_of_date_with_the_key_are_reported_with_the_command(tmp_path):
    day = day_with_a_key(tmp_path, PRACTICE_KEY)
    quiz.seal(day)
    q = QUESTIONS[3]
    day_with_a_key(tmp_path / "changed", {**PRACTICE_KEY, q.id: quiz.KeyEntry(wrong_letter(q), "Changed.")})
    shutil.copyfile(tmp_path / "changed" / DAY.name / quiz.KEY_FILE, day / quiz.KEY_FILE)
    problems = quiz.seal_problems(day)
    assert len(problems) == 2, problems
    assert f"(questions {q.id})" in problems[0] and problems[0].endswith(f"run `{quiz.SEAL_COMMAND}`")
    assert quiz.REFERENCE_FILE in problems[1] and quiz.SEAL_COMMAND in problems[1]
    quiz.seal(day)
    assert quiz.seal_problems(day) == []


def test_sealing_a_new_course_makes_a_salt_and_seals_a_new_question(tmp_path):
    text = quiz.SALT_LINE.sub("", (DAY / quiz.QUESTIONS_FILE).read_text(encoding="utf-8"))
    last = text.rindex("[[question]]")
    text = text[:last] + without_seals(text[last:])  # the last question was just written: no seals yet
    day = day_with_a_key(tmp_path, PRACTICE_KEY, text)
    with pytest.raises(quiz.QuizError, match="seal_salt"):
        quiz.load_quiz(day / quiz.QUESTIONS_FILE)
    assert quiz.seal_problems(day) == [f"quiz.toml has no seal_salt and no seals yet: run `{quiz.SEAL_COMMAND}`"]
    quiz.seal(day)
    sealed = quiz.load_quiz(day / quiz.QUESTIONS_FILE)
    assert quiz.SALT_FORMAT.fullmatch(sealed[0].salt) and sealed[0].salt != QUESTIONS[0].salt
    assert sealed[-1].is_right(right_letter(QUESTIONS[-1]))


def test_sealing_refuses_a_key_in_the_clear_and_a_copy_without_the_key(tmp_path):
    text = (DAY / quiz.QUESTIONS_FILE).read_text(encoding="utf-8").replace("\nday = 43\n", '\nday = 43\nanswer = "a"\n', 1)
    day = day_with_a_key(tmp_path, PRACTICE_KEY, text)
    with pytest.raises(quiz.QuizError, match="'answer' belongs in solutions/quiz_key.toml"):
        quiz.seal(day)
    (day / quiz.KEY_FILE).unlink()
    with pytest.raises(quiz.QuizError, match="only the full course has"):
        quiz.seal(day)


# ------------------------------------------------------------------------------ the answers file


@pytest.fixture
def answers_file(tmp_path) -> Path:
    """A copy of the learner's empty stub."""
    path = tmp_path / f"{quiz.ANSWERS_MODULE}.py"
    shutil.copyfile(DAY / "tasks" / path.name, path)
    return path


def test_answers_file_round_trips_sorted_with_its_docstring(answers_file):
    docstring = answers_file.read_text(encoding="utf-8").split('"""')[1]
    quiz.write_answers(answers_file, {"47-burn-rate": "e", "43-chain-availability": "e"})
    text = answers_file.read_text(encoding="utf-8")
    assert text == (f'"""{docstring}"""\n\nANSWERS: dict[str, str] = {{\n'
                    '    "43-chain-availability": "e",\n    "47-burn-rate": "e",\n}\n')
    assert quiz.read_answers(answers_file) == {"43-chain-availability": "e", "47-burn-rate": "e"}
    assert quiz.read_answers(answers_file, required=True) == {"43-chain-availability": "e", "47-burn-rate": "e"}
    namespace: dict = {}
    exec(compile(text, str(answers_file), "exec"), namespace)  # it is still the Python module it looks like
    assert namespace["ANSWERS"] == {"43-chain-availability": "e", "47-burn-rate": "e"}
    quiz.write_answers(answers_file, quiz.read_answers(answers_file))
    assert answers_file.read_text(encoding="utf-8") == text, "rewriting the same answers must not change the file"
    quiz.write_answers(answers_file, {})
    assert answers_file.read_text(encoding="utf-8") == (DAY / "tasks" / answers_file.name).read_text(encoding="utf-8")


@pytest.mark.parametrize("docstring", ['Mine, with a \\\\ backslash and a "quote"', 'Ends in a "quote"'])
def test_any_docstring_survives_a_rewrite(answers_file, docstring):
    answers_file.write_text(f"{docstring!r}\nANSWERS = {{}}\n")  # any valid docstring, escapes and all
    original = quiz.ast.get_docstring(quiz.ast.parse(answers_file.read_text()), clean=False)
    quiz.write_answers(answers_file, {"43-chain-availability": "e"})
    rewritten = quiz.ast.get_docstring(quiz.ast.parse(answers_file.read_text()), clean=False)
    assert rewritten.rstrip() == original.rstrip()
    assert quiz.read_answers(answers_file) == {"43-chain-availability": "e"}


@pytest.mark.parametrize(("text", "expected"), [
    ("ANSWERS = {\n", "is not valid Python"),
    ("ANSWERS = dict(a='b')\n", "plain dict literal"),
    ("ANSWERS = {'45-x': 2}\n", "must map question ids to letters"),
    ("ANSWERS = {'45-x': 'b'}\nANSWERS = {}\n", "ANSWERS must be assigned once, not on lines 1, 2"),
    ("ANSWERS = {}\nANSWERS |= {'45-x': 'b'}\n", "ANSWERS must be assigned once"),
])
def test_a_broken_answers_file_is_reported_not_overwritten(tmp_path, text, expected):
    path = tmp_path / "quiz_answers.py"
    path.write_text(text)
    with pytest.raises(quiz.QuizError, match=re.escape(expected)):
        quiz.read_answers(path)
    assert path.read_text() == text


@pytest.mark.parametrize(("text", "expected"), [
    (None, "quiz_answers.py not found"),
    ('"""Mine."""\n', "it must define ANSWERS as a plain dict literal"),
    ("import json\nANSWERS = {'45-x': 'b'}\n", "is read, not run, so it must hold only its docstring and ANSWERS"),
    ("ANSWERS = {}\nANSWERS['45-x'] = 'b'\n", "not other code such as line 2: ANSWERS['45-x'] = 'b'"),
    ("ANSWERS = {'45-x': 'b'} if True else {}\n", "plain dict literal"),
])
def test_the_graders_reading_accepts_only_a_literal(tmp_path, text, expected):
    path = tmp_path / "quiz_answers.py"
    if text is not None:
        path.write_text(text)
    with pytest.raises(quiz.QuizError, match=re.escape(expected)):
        quiz.read_answers(path, required=True)


def test_the_quizs_reading_is_lenient_with_other_code(tmp_path):
    path = tmp_path / "quiz_answers.py"
    path.write_text('"""Mine."""\nfrom __future__ import annotations\nimport json\nANSWERS = {"45-x": "b"}\n')
    assert quiz.read_answers(path) == {"45-x": "b"}
    path.write_text('"""Mine."""\nfrom __future__ import annotations\n\nANSWERS = {"45-x": "b"}  # mine\n')
    assert quiz.read_answers(path, required=True) == {"45-x": "b"}


# ------------------------------------------------------------------------------ a session


def session(answers_file: Path, questions: list[quiz.Question], typed: str) -> str:
    out = io.StringIO()
    assert quiz.run_session(questions, answers_file, ROOT, io.StringIO(typed), out, all_questions=PRACTICE) == 0
    return out.getvalue()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_right_answer_is_explained_and_recorded(answers_file):
    q = quiz.select(PRACTICE, day=45, count=1)[0]
    output = session(answers_file, [q], f"{right_letter(q)}\n")
    assert "Question 1 of 1 · Day 45 · 45-publisher-confirms" in output
    assert f"Your answer (a-d; s to skip, q to stop): {right_letter(q)}\n" in output, "piped answers are echoed"
    assert f"✓ Right: {right_letter(q)}." in output
    assert PRACTICE_KEY[q.id].explanation in flat(output), "a right answer gets its explanation"
    assert quiz.site_url(q.link) in output, "and the address of its section"
    assert ('\n  in the repository: Day-45-Event-Driven/notes.md, section "4.1 Publisher confirms"\n' in output), (
        "offline learners need the file and the section's title, on one line")
    assert quiz.read_answers(answers_file) == {q.id: right_letter(q)}
    assert "This session: 1 of 1 right." in output
    assert f"Overall: 1 of {len(PRACTICE)} questions answered, 1 right." in output


def test_a_wrong_answer_names_the_section_and_asks_again_without_the_answer(answers_file):
    first, second = quiz.select(PRACTICE, day=44, count=2)
    typed = f"{wrong_letter(first)}\n{right_letter(first)}\n{wrong_letter(second)}\ns\n"
    output = session(answers_file, [first, second], typed)
    assert f"✗ Not right: {wrong_letter(first)} is not the answer. The section that teaches it:" in output
    assert output.count(quiz.site_url(first.link)) == 2, "the section after the wrong answer, again after the right one"
    assert f"Try again (a-d; s to skip, q to stop): {right_letter(first)}\n" in output, "the same question is asked again"
    assert f"✓ Right: {right_letter(first)}." in output
    after_second = output[output.index(f"✗ Not right: {wrong_letter(second)}"):]
    assert quiz.site_url(second.link) in after_second, "a wrong answer names the section that teaches it"
    assert PRACTICE_KEY[second.id].explanation not in flat(output), "a question never answered right is not explained"
    assert second.choice(right_letter(second)) not in after_second, "the right choice is not repeated after a wrong one"
    assert not re.search(rf"\b{right_letter(second)}\)|right answer is", after_second), "nor named"
    assert quiz.read_answers(answers_file) == {first.id: right_letter(first), second.id: wrong_letter(second)}, (
        "each answer is saved as given: the second try replaced the first, the wrong one left before skipping stays")
    assert "This session: 1 of 2 right (0 at the first try)." in output


def test_a_letter_tried_already_is_not_counted_twice(answers_file):
    q = PRACTICE_BY_ID["46-401-or-403"]
    output = session(answers_file, [q], f"{wrong_letter(q)}\n{wrong_letter(q)}\n{wrong_letter(q, 1)}\nq\n")
    assert f"You tried {wrong_letter(q)} already: it is not the answer." in output
    assert f"✗ Not right either: {wrong_letter(q, 1)} is not the answer." in output
    assert output.count(quiz.site_url(q.link)) == 1, "the section is named once per question, not after every try"
    assert "Stopped; the answers so far are saved." in output
    assert quiz.read_answers(answers_file) == {q.id: wrong_letter(q, 1)}


def test_a_new_answer_replaces_the_old_one_and_keeps_the_others(answers_file):
    q = PRACTICE_BY_ID["46-401-or-403"]
    quiz.write_answers(answers_file, {"43-cqrs-read-model": "e", q.id: wrong_letter(q)})
    session(answers_file, [q], f"{right_letter(q)}\n")
    assert quiz.read_answers(answers_file) == {"43-cqrs-read-model": "e", q.id: right_letter(q)}


def test_bad_input_asks_again_skip_and_end_of_input_stop_cleanly(answers_file):
    first, second, third = quiz.select(PRACTICE, day=44, count=3)
    output = session(answers_file, [first, second, third], f"z\nab\n\n{right_letter(first).upper()}\ns\n")
    assert output.count("Answer with one letter from a-d, s to skip or q to stop.") == 3
    assert "Stopped; the answers so far are saved." in output, "the end of the input ends the quiz"
    assert quiz.read_answers(answers_file) == {first.id: right_letter(first)}, "a skipped question records nothing"
    assert "This session: 1 of 1 right, 1 skipped." in output


def test_hand_written_answers_survive_a_session(answers_file):
    q, other = PRACTICE_BY_ID["47-burn-rate"], PRACTICE_BY_ID["43-cqrs-read-model"]
    answers_file.write_text(f'"""Mine."""\nANSWERS = {{"45-Typo": "B", "{other.id}": " {right_letter(other).upper()} "}}\n')
    output = session(answers_file, [q], f"{right_letter(q)}\n")
    assert quiz.read_answers(answers_file) == {"45-Typo": "B", other.id: f" {right_letter(other).upper()} ",
                                               q.id: right_letter(q)}
    assert answers_file.read_text().startswith('"""Mine."""')
    assert f"Overall: 2 of {len(PRACTICE)} questions answered, 2 right." in output, "counted as the grader counts"


def test_q_stops_before_the_first_question_is_recorded(answers_file):
    output = session(answers_file, PRACTICE[:2], "q\n")
    assert "Stopped" in output and quiz.read_answers(answers_file) == {}


def test_select_filters_counts_and_shuffles_reproducibly():
    assert {q.day for q in quiz.select(QUESTIONS, day=47)} == {47}
    assert len(quiz.select(QUESTIONS, count=3)) == 3
    assert quiz.select(QUESTIONS, seed=7) == quiz.select(QUESTIONS, seed=7) != QUESTIONS
    assert sorted(q.id for q in quiz.select(QUESTIONS, shuffle=True)) == sorted(BY_ID)


def test_a_count_picks_unanswered_questions_first_then_wrong_ones_then_right_ones():
    day45 = [q for q in PRACTICE if q.day == 45]
    answers = {day45[0].id: right_letter(day45[0]), day45[1].id: wrong_letter(day45[1])}
    picked = quiz.select(PRACTICE, day=45, count=len(day45) - 1, answers=answers)
    assert day45[0] not in picked and day45[1] in picked, "an answer that was wrong comes before a right one"
    assert quiz.select(PRACTICE, day=45, count=len(day45) - 2, answers=answers) == day45[2:], "in the course's order"
    assert len(quiz.select(PRACTICE, day=45, count=len(day45), answers=answers)) == len(day45)


def test_a_random_pick_is_reproducible_by_its_seed_and_still_prefers_unanswered():
    answers = {q.id: right_letter(q) for q in PRACTICE[:-3]}
    picks = {seed: quiz.select(PRACTICE, count=3, shuffle=True, seed=seed) for seed in range(5)}
    assert picks[1] == quiz.select(PRACTICE, count=3, shuffle=True, seed=1)
    assert len({tuple(q.id for q in pick) for pick in picks.values()}) > 1, "different seeds, different picks"
    assert quiz.select(PRACTICE, count=3, shuffle=True, seed=4, answers=answers) != PRACTICE[-3:]
    assert {q.id for q in quiz.select(PRACTICE, count=3, shuffle=True, seed=4, answers=answers)} == {
        q.id for q in PRACTICE[-3:]}


# ------------------------------------------------------------------------------ the command


def practice_quiz_text() -> str:
    """The real quiz.toml, sealed with PRACTICE_KEY."""
    return quiz.sealed_text((DAY / quiz.QUESTIONS_FILE).read_text(encoding="utf-8"), PRACTICE_SALT, PRACTICE_KEY)


@pytest.fixture
def course(tmp_path):
    """A course whose Day 49 has the real questions, sealed with PRACTICE_KEY, and an empty answers file."""
    root = tmp_path / "course"
    (root / DAY.name / "tasks").mkdir(parents=True)
    (root / DAY.name / quiz.QUESTIONS_FILE).write_text(practice_quiz_text(), encoding="utf-8")
    for name in ("quiz_answers.py", "tasks.toml"):
        shutil.copyfile(DAY / "tasks" / name, root / DAY.name / "tasks" / name)
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
    day45 = [q for q in PRACTICE if q.day == 45]
    typed = f"{right_letter(day45[0])}\n{wrong_letter(day45[1])}\ns\n"
    code, out, _ = lab("--day", "45", "--count", "2", typed=typed)
    assert code == 0 and "Question 2 of 2 · Day 45" in out and "Question 3" not in out
    assert f"✓ Right: {right_letter(day45[0])}." in out and f"✗ Not right: {wrong_letter(day45[1])}" in out
    answers = quiz.read_answers(course.root / DAY.name / "tasks" / "quiz_answers.py")
    assert answers == {day45[0].id: right_letter(day45[0]), day45[1].id: wrong_letter(day45[1])}
    code, out, _ = lab("--list")
    assert code == 0
    assert "Day 45: 2 of " in out and f"[x] {day45[0].id}" in out and f"[ ] {day45[2].id}" in out
    assert "Day 43: 0 of " in out and f"2 of {len(QUESTIONS)} questions answered" in out


def question_ids_asked(out: str) -> list[str]:
    return re.findall(r"── Question \d+ of \d+ · Day \d+ · (\S+) ──", out)


def test_the_quiz_command_asks_other_questions_next_time_and_offers_a_random_pick(lab):
    first = PRACTICE[:2]
    code, out, _ = lab("--count", "2", typed="".join(f"{right_letter(q)}\n" for q in first))
    assert code == 0 and question_ids_asked(out) == [q.id for q in first]
    code, out, _ = lab("--count", "2", typed="s\ns\n")
    assert question_ids_asked(out) == [q.id for q in PRACTICE[2:4]], "answered questions wait until the others are"
    randomly = [question_ids_asked(lab("--count", "3", "--random", "--seed", "7", typed="s\ns\ns\n")[1])
                for _ in range(2)]
    assert randomly[0] == randomly[1] and len(randomly[0]) == 3 and not set(randomly[0]) & {q.id for q in first}


def test_the_quiz_command_refuses_a_day_without_questions(lab):
    code, _, err = lab("--day", "42")
    assert code == 2 and "no questions for day 42" in err
    code, _, err = lab("--count", "0")
    assert code == 2 and "--count must be at least 1" in err


def test_the_quiz_command_reports_a_broken_answers_file_without_touching_it(lab, course):
    path = course.root / DAY.name / "tasks" / "quiz_answers.py"
    path.write_text("ANSWERS = {\n")
    code, _, err = lab("--day", "43", typed="a\n")
    assert code == 2 and "is not valid Python" in err
    assert path.read_text() == "ANSWERS = {\n"


def test_the_seal_command_writes_the_seals_from_the_key(course):
    day = course.root / DAY.name
    key = {qid: quiz.KeyEntry(entry.answer, "Sealed by the command.") for qid, entry in PRACTICE_KEY.items()}
    (day / "solutions").mkdir()
    shutil.copyfile(day_with_a_key(course.root.parent / "key", key) / quiz.KEY_FILE, day / quiz.KEY_FILE)
    out = io.StringIO()
    assert quiz.command(course, dataclasses.make_dataclass("Args", [("seal", bool)])(True), io.StringIO(), out) == 0
    assert out.getvalue() == ("sealed: rewrote Day-49-Revision/quiz.toml\n"
                              "sealed: rewrote Day-49-Revision/solutions/quiz_answers.py\n")
    q = quiz.load_quiz(day / quiz.QUESTIONS_FILE)[0]
    assert q.explanation(right_letter(q)) == "Sealed by the command."
    out = io.StringIO()
    quiz.seal_command(course, out)
    assert "already match" in out.getvalue()


# ------------------------------------------------------------------------------ grading

PYPROJECT = """\
[tool.pytest.ini_options]
addopts = "--import-mode=importlib -p lab.pytest_plugin"
"""


def grade(tmp_path: Path, module_text: str) -> dict[str, object]:
    """The task's own tests, run as the grader runs them, on a course sealed with PRACTICE_KEY."""
    course = tmp_path / "course"
    (course / DAY.name / "tasks").mkdir(parents=True)
    (course / "pyproject.toml").write_text(PYPROJECT)
    (course / DAY.name / quiz.QUESTIONS_FILE).write_text(practice_quiz_text(), encoding="utf-8")
    test_file = course / DAY.name / "tasks" / "test_quiz_answers.py"
    shutil.copyfile(DAY / "tasks" / test_file.name, test_file)
    module = tmp_path / "submission" / DAY.name / "tasks" / f"{quiz.ANSWERS_MODULE}.py"
    module.parent.mkdir(parents=True)
    module.write_text(module_text)
    results, error = run_pytest([test_file], {"LAB_SUBMISSION": str(tmp_path / "submission")}, 60, course)
    assert not error, error
    return {r.nodeid.rsplit("[", 1)[-1].rstrip("]"): r for r in results}


def test_grading_names_the_section_but_never_the_right_answer(tmp_path):
    wrong = [q for q in PRACTICE if q.day in (44, 46)]
    right = [q for q in PRACTICE if q.day == 47]
    answers = {q.id: wrong_letter(q) for q in wrong} | {q.id: right_letter(q).upper() for q in right}
    answers[PRACTICE[0].id] = "z"
    by_id = grade(tmp_path, f"ANSWERS = {answers!r}\n")
    assert set(by_id) == set(BY_ID)
    assert all(by_id[q.id].outcome == "passed" for q in right), "a right answer passes, whatever its case"
    for q in wrong:
        message = by_id[q.id].message
        assert by_id[q.id].outcome == "failed"
        assert message.splitlines()[0] == f"you answered {wrong_letter(q)}, which is not the right answer: read {q.link}"
        assert q.prompt in message and q.choice(wrong_letter(q)) in message
        assert q.choice(right_letter(q)) not in message, f"the failure of {q.id} gives the right answer away"
        assert PRACTICE_KEY[q.id].explanation not in message
    assert "which is not one of its choices" in by_id[PRACTICE[0].id].message
    unanswered = [r for qid, r in by_id.items() if qid not in answers]
    assert unanswered and all(r.outcome == "failed" and "NotImplementedError" in r.message
                              and "not answered yet" in r.message for r in unanswered), (
        "unanswered questions must read as not started, like a stub's NotImplementedError")


def test_grading_reads_the_answers_and_never_runs_them(tmp_path):
    ran = tmp_path / "ran"
    answers = {q.id: right_letter(q) for q in PRACTICE}
    module = textwrap.dedent(f"""\
        from pathlib import Path
        Path({str(ran)!r}).write_text("the learner's code ran")
        ANSWERS = {answers!r}
    """)
    by_id = grade(tmp_path, module)
    assert not ran.exists(), "grading ran the learner's quiz_answers.py"
    assert all(r.outcome == "failed" for r in by_id.values())
    assert "is read, not run, so it must hold only its docstring and ANSWERS" in by_id[PRACTICE[0].id].message


def test_grading_explains_answers_that_are_not_a_literal(tmp_path):
    by_id = grade(tmp_path / "call", "ANSWERS = dict(a='b')\n")
    assert all("ANSWERS must be a plain dict literal" in r.message for r in by_id.values()), by_id[PRACTICE[0].id].message
    by_id = grade(tmp_path / "none", '"""No answers."""\n')
    assert all("it must define ANSWERS as a plain dict literal" in r.message for r in by_id.values())


def test_the_quiz_is_day_49s_only_task_worth_100_points():
    day = next(d for d in load_course().days if d.number == quiz.QUIZ_DAY)
    assert [(t.id, t.module, t.points) for t in day.tasks] == [("quiz", quiz.ANSWERS_MODULE, 100)]
