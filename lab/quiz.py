"""The self-check quiz: `python -m lab quiz` asks the questions of Day-49-Revision/quiz.toml.

After each answer it says whether it was right, explains why, and points to the section of the
course that teaches it. Every answer is recorded in the learner's
Day-49-Revision/tasks/quiz_answers.py, the module of the Day 49 task `quiz`, whose tests (one per
question) grade it like any other task: `python -m lab status` and `python -m lab grade 49` show
the score. The same functions load and validate the questions for those tests and for
lab/tests/test_quiz.py.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import sys
import textwrap
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

QUIZ_DAY = 49
QUESTIONS_FILE = "quiz.toml"  # in the quiz day's folder
ANSWERS_MODULE = "quiz_answers"  # the task module: <day>/tasks/quiz_answers.py
DAYS = tuple(range(43, 49))  # every one of these days has questions
LETTERS = "abcde"
MIN_CHOICES, MAX_CHOICES = 3, 5
FIELDS = {"id", "day", "prompt", "choices", "answer", "explanation", "link"}
ID_FORMAT = re.compile(r"(?P<day>\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*")
LINK_FORMAT = re.compile(r"(?P<page>(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+\.md)(?:#(?P<anchor>[A-Za-z0-9_-]+))?")
# Where `make docs` serves the site; LAB_SITE_URL names another (a published copy, say).
DEFAULT_SITE_URL = "http://127.0.0.1:8000/"
WIDTH = 100


class QuizError(Exception):
    """quiz.toml or quiz_answers.py is not what the quiz needs; ``problems`` says why."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Question:
    id: str
    day: int
    prompt: str
    choices: tuple[str, ...]
    answer: str  # a letter: "a" is choices[0]
    explanation: str
    link: str  # page path from the repository root, optionally with #anchor

    @property
    def letters(self) -> str:
        return LETTERS[:len(self.choices)]

    def choice(self, letter: str) -> str:
        return self.choices[LETTERS.index(letter)]

    @property
    def page(self) -> str:
        return self.link.partition("#")[0]

    @property
    def anchor(self) -> str:
        return self.link.partition("#")[2]


def reflow(text: str) -> str:
    """Single line breaks become spaces; a blank line separates paragraphs."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


# ------------------------------------------------------------------------------ the questions


def question_problems(entry: object, number: int) -> list[str]:
    """What is wrong with one [[question]] table (its own fields only)."""
    if not isinstance(entry, dict):
        return [f"question {number}: not a table"]
    where = f"question {number} ({entry.get('id', 'no id')})"
    problems = [f"{where}: unknown field {key!r}" for key in sorted(set(entry) - FIELDS)]
    problems += [f"{where}: missing field {key!r}" for key in sorted(FIELDS - set(entry))]
    if problems:
        return problems
    qid, day, choices = entry["id"], entry["day"], entry["choices"]
    if not isinstance(qid, str) or not (match := ID_FORMAT.fullmatch(qid)):
        problems.append(f"{where}: id must look like '45-publisher-confirms' (day, then lowercase words)")
    elif not isinstance(day, int) or int(match["day"]) != day:
        problems.append(f"{where}: id {qid!r} must start with its day, {day!r}")
    if not isinstance(day, int) or isinstance(day, bool) or day not in DAYS:
        problems.append(f"{where}: day must be one of {DAYS[0]}-{DAYS[-1]}, not {day!r}")
    for key in ("prompt", "explanation"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            problems.append(f"{where}: {key} must be non-empty text")
    if (not isinstance(choices, list) or not MIN_CHOICES <= len(choices) <= MAX_CHOICES
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        problems.append(f"{where}: choices must be a list of {MIN_CHOICES} to {MAX_CHOICES} non-empty strings")
    else:
        if len({reflow(c).lower() for c in choices}) != len(choices):
            problems.append(f"{where}: two choices say the same thing")
        letters = LETTERS[:len(choices)]
        if not isinstance(entry["answer"], str) or entry["answer"] not in letters:
            problems.append(f"{where}: answer must be the letter of one of its choices ({', '.join(letters)}), "
                            f"not {entry['answer']!r}")
    link = entry["link"]
    if not isinstance(link, str) or not (match := LINK_FORMAT.fullmatch(link)):
        problems.append(f"{where}: link must be a page path from the repository root with an optional "
                        f"#anchor, like 'Day-45-Event-Driven/notes.md#41-publisher-confirms', not {link!r}")
    elif match["page"].endswith("notes.md") and not match["anchor"]:
        problems.append(f"{where}: a link to a day's notes must name the section: add its #anchor")
    return problems


def quiz_problems(data: dict) -> list[str]:
    """Everything wrong with a parsed quiz.toml; an empty list when it is usable."""
    entries = data.get("question")
    if not isinstance(entries, list) or not entries:
        return ["the file has no [[question]] tables"]
    problems = [f"unknown top-level key {key!r}" for key in sorted(set(data) - {"question"})]
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        problems += question_problems(entry, number)
        qid = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(qid, str):
            if qid in seen:
                problems.append(f"question {number}: id {qid!r} is used twice")
            seen.add(qid)
    covered = {e.get("day") for e in entries if isinstance(e, dict)}
    problems += [f"no question for Day {day}" for day in DAYS if day not in covered]
    return problems


def load_quiz(path: Path) -> list[Question]:
    """The questions of a quiz.toml, in file order; QuizError if the file is not valid."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise QuizError([f"{path}: {error}"]) from error
    problems = quiz_problems(data)
    if problems:
        raise QuizError([f"{path}: {p}" for p in problems])
    return [Question(id=e["id"], day=e["day"], prompt=reflow(e["prompt"]),
                     choices=tuple(reflow(c) for c in e["choices"]), answer=e["answer"],
                     explanation=reflow(e["explanation"]), link=e["link"])
            for e in data["question"]]


# ------------------------------------------------------------------------------ links


@cache
def _page_anchors(path: str, mtime: float) -> dict[str, str]:
    import markdown  # only the link checks and the section titles need it

    # The extensions of mkdocs.yml that decide which headings there are and their ids: the toc
    # extension's slugify, attr_list's {#custom-id}, and the fences and blocks that hide headings.
    md = markdown.Markdown(extensions=["toc", "attr_list", "admonition", "md_in_html", "def_list", "footnotes",
                                       "tables", "pymdownx.details", "pymdownx.superfences", "pymdownx.tabbed"],
                           extension_configs={"pymdownx.tabbed": {"alternate_style": True}})
    md.convert(Path(path).read_text(encoding="utf-8"))
    anchors: dict[str, str] = {}

    def walk(tokens: list[dict]) -> None:
        for token in tokens:
            anchors[token["id"]] = token["name"]
            walk(token["children"])

    walk(md.toc_tokens)
    return anchors


def page_anchors(page: Path) -> dict[str, str]:
    """The heading ids of a Markdown page, as the course site renders them, with each heading's text."""
    return _page_anchors(str(page), page.stat().st_mtime)


def link_problems(questions: Iterable[Question], root: Path) -> list[str]:
    """Links whose page is not in the repository, or whose anchor is not a heading of that page."""
    problems = []
    for q in questions:
        page = root / q.page
        if not page.is_file():
            problems.append(f"{q.id}: {q.page} does not exist")
        elif q.anchor and q.anchor not in page_anchors(page):
            near = [a for a in page_anchors(page) if q.anchor.split("-", 1)[-1] in a]
            hint = f" (did you mean {', '.join(near[:3])}?)" if near else ""
            problems.append(f"{q.id}: {q.page} has no heading with the id #{q.anchor}{hint}")
    return problems


def site_url(link: str, base: str | None = None) -> str:
    """The page's address on the course site: notes.md is served as notes/, README.md as the folder."""
    base = base or os.environ.get("LAB_SITE_URL") or DEFAULT_SITE_URL
    page, _, anchor = link.partition("#")
    folder, _, name = page.rpartition("/")
    stem = name.removesuffix(".md")
    path = "/".join(filter(None, [folder, None if stem in ("README", "index") else stem]))
    path = path + "/" if path else ""
    return base.rstrip("/") + "/" + path + (f"#{anchor}" if anchor else "")


def section_title(question: Question, root: Path) -> str | None:
    """The heading text of the linked section, or None when it cannot be found."""
    try:
        return page_anchors(root / question.page).get(question.anchor) if question.anchor else None
    except (OSError, ImportError):
        return None


def where_to_read(question: Question, root: Path) -> list[str]:
    """Two lines: the section on the site, and the same section as a file in the repository."""
    title = section_title(question, root)
    in_repo = question.page + (f', section "{title}"' if title else (f"#{question.anchor}" if question.anchor else ""))
    return [f"on the site: {site_url(question.link)}", f"in the repository: {in_repo}"]


# ------------------------------------------------------------------------------ the answers file

STUB_DOCSTRING = "Answers to the self-check quiz: question id -> the letter of the chosen answer."


def read_answers(path: Path) -> dict[str, str]:
    """ANSWERS from quiz_answers.py, read without running it; {} when the file does not exist."""
    if not path.is_file():
        return {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as error:
        raise QuizError([f"{path} is not valid Python (line {error.lineno}): fix it, or delete it to "
                         "start the quiz again"]) from error
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "ANSWERS" and node.value is not None:
            try:
                answers = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError) as error:
                raise QuizError([f"{path}: ANSWERS must be a plain dict literal"]) from error
            if not isinstance(answers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in answers.items()):
                raise QuizError([f"{path}: ANSWERS must map question ids to letters, e.g. "
                                 '{"45-publisher-confirms": "b"}'])
            return answers
    return {}


def answers_source(answers: dict[str, str], docstring: str) -> str:
    """The text of quiz_answers.py: the docstring, then ANSWERS sorted by question id."""
    body = "".join(f"    {json.dumps(qid)}: {json.dumps(letter)},\n" for qid, letter in sorted(answers.items()))
    value = "{\n" + body + "}" if answers else "{}"
    return f'"""{docstring}"""\n\nANSWERS: dict[str, str] = {value}\n'


def write_answers(path: Path, answers: dict[str, str]) -> None:
    """Rewrite quiz_answers.py with ``answers``, keeping its docstring (and any hand-written entries)."""
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
        raise TypeError("answers map question ids to letters, both strings")
    docstring = None
    if path.is_file():
        try:
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
        except SyntaxError:
            docstring = None
    # Written back between triple quotes as it reads: backslashes escaped, no closing quote inside.
    docstring = (docstring or STUB_DOCSTRING).replace("\\", "\\\\").replace('"""', "'''")
    docstring += " " if docstring.endswith('"') else ""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(answers_source(answers, docstring), encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------ asking


class Terminal:
    """The conversation with the learner: wrapped output, one line of input per answer."""

    def __init__(self, stdin: TextIO, stdout: TextIO):
        self.stdin, self.stdout = stdin, stdout
        tty = hasattr(stdout, "isatty") and stdout.isatty()
        self.width = max(40, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns - 1)) if tty else WIDTH
        self.echo = not (hasattr(stdin, "isatty") and stdin.isatty())  # piped answers: show them

    def say(self, text: str = "", indent: str = "", hanging: str | None = None) -> None:
        if not text:
            self.stdout.write("\n")
            return
        for number, paragraph in enumerate(text.split("\n\n")):
            if number:
                self.stdout.write("\n")
            self.stdout.write(textwrap.fill(paragraph, self.width, initial_indent=indent,
                                            subsequent_indent=indent if hanging is None else hanging,
                                            break_long_words=False, break_on_hyphens=False) + "\n")

    def ask(self, prompt: str) -> str | None:
        """One line of input, stripped and lowercased; None at the end of the input."""
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            self.stdout.write("\n")
            return None
        if self.echo:
            self.stdout.write(line.strip() + "\n")
        return line.strip().lower()


def select(questions: list[Question], day: int | None = None, count: int | None = None,
           shuffle: bool = False, seed: int | None = None) -> list[Question]:
    chosen = [q for q in questions if day is None or q.day == day]
    if shuffle or seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen[:count] if count else chosen


def ask_question(term: Terminal, q: Question, number: int, total: int) -> str | None:
    """Ask one question; the letter answered, "skip", or None to stop."""
    term.say()
    term.say(f"── Question {number} of {total} · Day {q.day} · {q.id} ──")
    term.say(q.prompt)
    term.say()
    for letter, choice in zip(q.letters, q.choices, strict=False):
        term.say(choice, indent=f"  {letter}) ", hanging="     ")
    options = f"{q.letters[0]}-{q.letters[-1]}"
    while True:
        reply = term.ask(f"Your answer ({options}; s to skip, q to stop): ")
        if reply is None or reply in ("q", "quit", "exit"):
            return None
        if reply in ("s", "skip"):
            return "skip"
        if len(reply) == 1 and reply in q.letters:
            return reply
        term.say(f"Answer with one letter from {options}, s to skip or q to stop.")


def feedback(term: Terminal, q: Question, given: str, root: Path) -> None:
    if given == q.answer:
        term.say(f"✓ Right: {q.answer}.")
    else:
        term.say(f"✗ Not quite: you answered {given}; the right answer is {q.answer}) {q.choice(q.answer)}",
                 hanging="  ")
    term.say()
    term.say(q.explanation)
    term.say()
    term.say("Read more:")
    for line in where_to_read(q, root):  # never wrapped: an address is copied whole
        term.stdout.write(f"  {line}\n")


def run_session(questions: list[Question], answers_path: Path, root: Path, stdin: TextIO, stdout: TextIO,
                all_questions: list[Question] | None = None) -> int:
    """Ask ``questions``, recording each answer in ``answers_path`` as soon as it is given."""
    term = Terminal(stdin, stdout)
    answers = read_answers(answers_path)
    shown = display_path(answers_path, root)
    term.say(f"Week 7 self-check quiz: {len(questions)} question{'s' if len(questions) != 1 else ''}. "
             f"Answer with a letter; each answer is checked, explained and saved in {shown}.")
    asked = right = skipped = 0
    for number, q in enumerate(questions, start=1):
        given = ask_question(term, q, number, len(questions))
        if given is None:
            term.say()
            term.say("Stopped; the answers so far are saved.")
            break
        if given == "skip":
            skipped += 1
            continue
        answers[q.id] = given
        write_answers(answers_path, answers)
        asked += 1
        right += given == q.answer
        feedback(term, q, given, root)
    known = {q.id: q for q in (all_questions or questions)}
    answered = [qid for qid in answers if qid in known]
    correct = sum(answers[qid].strip().lower() == known[qid].answer for qid in answered)  # as graded
    term.say()
    term.say(f"This session: {right} of {asked} right" + (f", {skipped} skipped." if skipped else "."))
    term.say(f"Overall: {len(answered)} of {len(known)} questions answered, {correct} right. "
             f"`python -m lab status` shows the score (Day {QUIZ_DAY}, task quiz); "
             "`python -m lab quiz --list` shows which questions are left.")
    return 0


def list_questions(questions: list[Question], answers_path: Path, stdout: TextIO, day: int | None = None) -> int:
    term = Terminal(sys.stdin, stdout)
    answers = read_answers(answers_path)
    for number in sorted({q.day for q in questions if day is None or q.day == day}):
        in_day = [q for q in questions if q.day == number]
        done = sum(q.id in answers for q in in_day)
        term.say(f"Day {number}: {done} of {len(in_day)} answered")
        width = max(len(q.id) for q in in_day)
        for q in in_day:
            mark = f"[x] {q.id:<{width}}  answered {answers[q.id]}" if q.id in answers else f"[ ] {q.id}"
            term.say(mark, indent="  ")
    known = {q.id for q in questions}
    total = sum(qid in answers for qid in known)
    term.say()
    term.say(f"{total} of {len(known)} questions answered. `python -m lab quiz --day N` asks one day's "
             "questions again; a new answer replaces the old one.")
    stale = sorted(set(answers) - known)
    if stale:
        term.say(f"Answers to questions the quiz no longer has (ignored): {', '.join(stale)}")
    return 0


def display_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def paths(course) -> tuple[Path, Path]:
    """quiz.toml and the learner's quiz_answers.py in ``course`` (a lab.course.Course)."""
    day = next((d for d in course.days if d.number == QUIZ_DAY), None)
    if day is None:
        raise QuizError([f"the course has no Day {QUIZ_DAY} folder, where the quiz lives"])
    return day.path / QUESTIONS_FILE, day.path / "tasks" / f"{ANSWERS_MODULE}.py"


def command(course, args, stdin: TextIO, stdout: TextIO) -> int:
    """`python -m lab quiz`: the interactive quiz, or with --list the questions answered so far."""
    try:
        questions_path, answers_path = paths(course)
        questions = load_quiz(questions_path)
        if args.day is not None and not any(q.day == args.day for q in questions):
            days = sorted({q.day for q in questions})
            raise QuizError([f"the quiz has no questions for day {args.day}; it has days {days[0]}-{days[-1]}"])
        if args.count is not None and args.count < 1:
            raise QuizError(["--count must be at least 1"])
        if args.list:
            return list_questions(questions, answers_path, stdout, args.day)
        chosen = select(questions, args.day, args.count, args.shuffle, args.seed)
        return run_session(chosen, answers_path, course.root, stdin, stdout, all_questions=questions)
    except QuizError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        stdout.write("\nStopped; the answers so far are saved.\n")
        return 130
