"""The self-check quiz: `python -m lab quiz` asks the questions of Day-49-Revision/quiz.toml.

After each answer it says whether it was right. A right answer gets its explanation and the section
of the course that teaches it; a wrong one gets that section to read and another try at the same
question, never the right answer. Every answer is recorded in the learner's
Day-49-Revision/tasks/quiz_answers.py, the module of the Day 49 task `quiz`, whose tests (one per
question) grade it like any other task: `python -m lab status` and `python -m lab grade 49` show
the score. The same functions load and validate the questions for those tests and for
lab/tests/test_quiz.py.

The answer key, each question's right letter and explanation, is solutions/quiz_key.toml, which
neither the student edition nor the course site contains. quiz.toml carries it sealed: a salted
sha256 of the right letter, and the explanation XORed with a shake_256 keystream that only the
right letter reproduces. `python -m lab.quiz --seal` (for authors) writes the seals from the key.
Sealed is not secret: trying a question's few letters finds the right one, as the quiz itself
allows; the seal keeps the key from being read off the file or loaded into quiz_answers.py.
"""

from __future__ import annotations

import argparse
import ast
import base64
import binascii
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import sys
import textwrap
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

QUIZ_DAY = 49
QUESTIONS_FILE = "quiz.toml"  # in the quiz day's folder
KEY_FILE = "solutions/quiz_key.toml"  # in the quiz day's folder; never shipped to learners
REFERENCE_FILE = "solutions/quiz_answers.py"  # the task's reference, written from the key
ANSWERS_MODULE = "quiz_answers"  # the task module: <day>/tasks/quiz_answers.py
SEAL_COMMAND = "python -m lab.quiz --seal"
DAYS = tuple(range(43, 49))  # every one of these days has questions
LETTERS = "abcde"
MIN_CHOICES, MAX_CHOICES = 3, 5
FIELDS = {"id", "day", "prompt", "choices", "link"}
SEALED_FIELDS = {"answer_sha256", "explanation_sealed"}
KEY_FIELDS = {"answer", "explanation"}
SALT_FIELD = "seal_salt"  # top level of quiz.toml: one per course
SALT_FORMAT = re.compile(r"[0-9a-f]{32}")
DIGEST_FORMAT = re.compile(r"[0-9a-f]{64}")
BASE64_FORMAT = re.compile(r"[A-Za-z0-9+/=\s]+")
# Every sealed explanation starts with this, so a stale seal opens as None rather than as garbage.
SEALED_MARK = b"explanation\n"
SEALED_LINE_WIDTH = 96
ID_FORMAT = re.compile(r"(?P<day>\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*")
LINK_FORMAT = re.compile(r"(?P<page>(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+\.md)(?:#(?P<anchor>[A-Za-z0-9_-]+))?")
# Where `make docs` serves the site; LAB_SITE_URL names another (a published copy, say).
DEFAULT_SITE_URL = "http://127.0.0.1:8000/"
WIDTH = 100


class QuizError(Exception):
    """quiz.toml, the key or quiz_answers.py is not what the quiz needs; ``problems`` says why."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# ------------------------------------------------------------------------------ the seals


def _seal_input(purpose: str, salt: str, qid: str, letter: str) -> bytes:
    # A different purpose hashes different bytes: the published digest says nothing of the keystream.
    return "\0".join((purpose, salt, qid, letter)).encode("utf-8")


def answer_digest(salt: str, qid: str, letter: str) -> str:
    """The answer_sha256 that quiz.toml holds when ``letter`` is the right answer to question ``qid``."""
    return hashlib.sha256(_seal_input("answer", salt, qid, letter)).hexdigest()


def _xor_keystream(data: bytes, salt: str, qid: str, letter: str) -> bytes:
    stream = hashlib.shake_256(_seal_input("explanation", salt, qid, letter)).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def seal_explanation(explanation: str, salt: str, qid: str, letter: str) -> str:
    """The explanation, reflowed, encrypted with a keystream of the right letter, in base64."""
    plain = SEALED_MARK + reflow(explanation).encode("utf-8")
    return base64.b64encode(_xor_keystream(plain, salt, qid, letter)).decode("ascii")


def open_explanation(sealed: str, salt: str, qid: str, letter: str) -> str | None:
    """The explanation sealed for ``letter``; None for any other letter, or a seal that is not one."""
    try:
        data = base64.b64decode("".join(sealed.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    plain = _xor_keystream(data, salt, qid, letter)
    if not plain.startswith(SEALED_MARK):
        return None
    try:
        return plain[len(SEALED_MARK):].decode("utf-8")
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------------------ the questions


@dataclass(frozen=True)
class Question:
    id: str
    day: int
    prompt: str
    choices: tuple[str, ...]
    link: str  # page path from the repository root, optionally with #anchor
    answer_sha256: str  # answer_digest(salt, id, right letter)
    explanation_sealed: str  # seal_explanation(explanation, salt, id, right letter)
    salt: str  # the course's seal_salt

    @property
    def letters(self) -> str:
        return LETTERS[:len(self.choices)]

    def choice(self, letter: str) -> str:
        return self.choices[LETTERS.index(letter)]

    def is_right(self, letter: str) -> bool:
        """Whether ``letter`` is the right answer, by the sealed digest."""
        return letter in self.letters and hmac.compare_digest(answer_digest(self.salt, self.id, letter),
                                                              self.answer_sha256)

    def explanation(self, letter: str) -> str | None:
        """The explanation, which only the right letter opens; None for any other."""
        if not self.is_right(letter):
            return None
        return open_explanation(self.explanation_sealed, self.salt, self.id, letter)

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


def question_problems(entry: object, number: int, sealed: bool = True) -> list[str]:
    """What is wrong with one [[question]] table (its own fields only); ``sealed``: its seals must be there."""
    if not isinstance(entry, dict):
        return [f"question {number}: not a table"]
    where = f"question {number} ({entry.get('id', 'no id')})"
    problems = [f"{where}: {key!r} belongs in {KEY_FILE}, not in {QUESTIONS_FILE}, which learners receive"
                for key in sorted(KEY_FIELDS & set(entry))]
    problems += [f"{where}: unknown field {key!r}" for key in sorted(set(entry) - FIELDS - SEALED_FIELDS - KEY_FIELDS)]
    problems += [f"{where}: missing field {key!r}" for key in sorted(FIELDS - set(entry))]
    if sealed:
        problems += [f"{where}: missing field {key!r}: run `{SEAL_COMMAND}`" for key in sorted(SEALED_FIELDS - set(entry))]
    if problems:
        return problems
    qid, day, choices = entry["id"], entry["day"], entry["choices"]
    if not isinstance(qid, str) or not (match := ID_FORMAT.fullmatch(qid)):
        problems.append(f"{where}: id must look like '45-publisher-confirms' (day, then lowercase words)")
    elif not isinstance(day, int) or int(match["day"]) != day:
        problems.append(f"{where}: id {qid!r} must start with its day, {day!r}")
    if not isinstance(day, int) or isinstance(day, bool) or day not in DAYS:
        problems.append(f"{where}: day must be one of {DAYS[0]}-{DAYS[-1]}, not {day!r}")
    if not isinstance(entry["prompt"], str) or not entry["prompt"].strip():
        problems.append(f"{where}: prompt must be non-empty text")
    if (not isinstance(choices, list) or not MIN_CHOICES <= len(choices) <= MAX_CHOICES
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        problems.append(f"{where}: choices must be a list of {MIN_CHOICES} to {MAX_CHOICES} non-empty strings")
    elif len({reflow(c).lower() for c in choices}) != len(choices):
        problems.append(f"{where}: two choices say the same thing")
    link = entry["link"]
    if not isinstance(link, str) or not (match := LINK_FORMAT.fullmatch(link)):
        problems.append(f"{where}: link must be a page path from the repository root with an optional "
                        f"#anchor, like 'Day-45-Event-Driven/notes.md#41-publisher-confirms', not {link!r}")
    elif match["page"].endswith("notes.md") and not match["anchor"]:
        problems.append(f"{where}: a link to a day's notes must name the section: add its #anchor")
    digest, explanation = entry.get("answer_sha256"), entry.get("explanation_sealed")
    if "answer_sha256" in entry and not (isinstance(digest, str) and DIGEST_FORMAT.fullmatch(digest)):
        problems.append(f"{where}: answer_sha256 must be 64 lowercase hex digits: run `{SEAL_COMMAND}`")
    if "explanation_sealed" in entry and not (isinstance(explanation, str) and BASE64_FORMAT.fullmatch(explanation)):
        problems.append(f"{where}: explanation_sealed must be base64 text: run `{SEAL_COMMAND}`")
    return problems


def quiz_problems(data: dict, sealed: bool = True) -> list[str]:
    """Everything wrong with a parsed quiz.toml; an empty list when it is usable.

    ``sealed=False`` is the check before sealing, which writes the salt and the sealed fields.
    """
    entries = data.get("question")
    if not isinstance(entries, list) or not entries:
        return ["the file has no [[question]] tables"]
    problems = [f"unknown top-level key {key!r}" for key in sorted(set(data) - {"question", SALT_FIELD})]
    salt = data.get(SALT_FIELD)
    if (sealed or salt is not None) and not (isinstance(salt, str) and SALT_FORMAT.fullmatch(salt)):
        problems.append(f"{SALT_FIELD} must be 32 lowercase hex digits at the top of the file: run `{SEAL_COMMAND}`")
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        problems += question_problems(entry, number, sealed)
        qid = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(qid, str):
            if qid in seen:
                problems.append(f"question {number}: id {qid!r} is used twice")
            seen.add(qid)
    covered = {e.get("day") for e in entries if isinstance(e, dict)}
    problems += [f"no question for Day {day}" for day in DAYS if day not in covered]
    return problems


def parse_toml(path: Path, text: str | None = None) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8") if text is None else text)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise QuizError([f"{path}: {error}"]) from error


def load_quiz(path: Path, text: str | None = None) -> list[Question]:
    """The questions of a quiz.toml (or of ``text``, read as that file), in file order; QuizError if not valid."""
    data = parse_toml(path, text)
    problems = quiz_problems(data)
    if problems:
        raise QuizError([f"{path}: {p}" for p in problems])
    return [Question(id=e["id"], day=e["day"], prompt=reflow(e["prompt"]), choices=tuple(reflow(c) for c in e["choices"]),
                     link=e["link"], answer_sha256=e["answer_sha256"], explanation_sealed=e["explanation_sealed"],
                     salt=data[SALT_FIELD])
            for e in data["question"]]


# ------------------------------------------------------------------------------ the key (authors only)


@dataclass(frozen=True)
class KeyEntry:
    answer: str  # the letter of the right choice
    explanation: str  # as written in the key; the quiz shows it reflowed


def key_problems(data: dict, choice_counts: Mapping[str, int]) -> list[str]:
    """Everything wrong with a parsed quiz_key.toml, given how many choices each question of quiz.toml has."""
    problems = [f"no entry for question {qid!r}" for qid in choice_counts if qid not in data]
    for qid, entry in data.items():
        if qid not in choice_counts:
            problems.append(f"[{qid}]: quiz.toml has no question with this id")
            continue
        if not isinstance(entry, dict) or set(entry) != KEY_FIELDS:
            problems.append(f"[{qid}]: must hold exactly {' and '.join(sorted(KEY_FIELDS))}")
            continue
        letters = LETTERS[:choice_counts[qid]]
        if not isinstance(entry["answer"], str) or entry["answer"] not in letters:
            problems.append(f"[{qid}]: answer must be the letter of one of its choices ({', '.join(letters)}), "
                            f"not {entry['answer']!r}")
        if not isinstance(entry["explanation"], str) or not entry["explanation"].strip():
            problems.append(f"[{qid}]: explanation must be non-empty text")
    return problems


def load_key(path: Path, choice_counts: Mapping[str, int]) -> dict[str, KeyEntry]:
    """The answer key, by question id; QuizError when it does not fit the questions (id -> number of choices)."""
    data = parse_toml(path)
    problems = key_problems(data, choice_counts)
    if problems:
        raise QuizError([f"{path}: {p}" for p in problems])
    return {qid: KeyEntry(entry["answer"], entry["explanation"]) for qid, entry in data.items()}


QUESTION_START = re.compile(r"(?m)^(?=\[\[question\]\][ \t]*$)")
SALT_LINE = re.compile(rf'(?m)^{SALT_FIELD} = "[^"\n]*"[ \t]*\n?')
SEALED_LINES = re.compile(r"(?m)^(?:answer_sha256 = \"[^\"\n]*\"|explanation_sealed = '''[^']*''')[ \t]*\n?")


def sealed_fields(qid: str, salt: str, entry: KeyEntry) -> str:
    """The TOML lines of one question's seals; the base64 is wrapped so that no line runs long."""
    sealed = seal_explanation(entry.explanation, salt, qid, entry.answer)
    lines = [sealed[i:i + SEALED_LINE_WIDTH] for i in range(0, len(sealed), SEALED_LINE_WIDTH)]
    return (f'answer_sha256 = "{answer_digest(salt, qid, entry.answer)}"\n'
            "explanation_sealed = '''\n" + "\n".join(lines) + "\n'''\n")


def sealed_text(text: str, salt: str, key: Mapping[str, KeyEntry]) -> str:
    """quiz.toml's text with the salt and every question's seals written from ``key``; the rest as it was."""
    preamble, *blocks = QUESTION_START.split(text)
    preamble = SALT_LINE.sub("", preamble).rstrip()
    parts = []
    for block in blocks:
        try:
            qid = tomllib.loads(block)["question"][0]["id"]
        except (tomllib.TOMLDecodeError, KeyError, IndexError, TypeError) as error:
            raise QuizError([f"cannot seal: a [[question]] table is not valid TOML on its own ({error})"]) from error
        if qid not in key:
            raise QuizError([f"cannot seal: {KEY_FILE} has no entry for question {qid!r}"])
        parts.append(SEALED_LINES.sub("", block).rstrip() + "\n" + sealed_fields(qid, salt, key[qid]))
    head = (preamble + "\n\n" if preamble else "") + f'{SALT_FIELD} = "{salt}"\n\n\n'
    return head + "\n".join(parts)


def quiz_and_key(day_dir: Path) -> tuple[str, dict, dict[str, KeyEntry]]:
    """quiz.toml's text and data (seals not required), and the key that fits it."""
    quiz_path, key_path = day_dir / QUESTIONS_FILE, day_dir / KEY_FILE
    if not key_path.is_file():
        raise QuizError([f"{key_path} not found: sealing needs the answer key, which only the full course has"])
    text = quiz_path.read_text(encoding="utf-8")
    data = parse_toml(quiz_path, text)
    problems = quiz_problems(data, sealed=False)
    if problems:
        raise QuizError([f"{quiz_path}: {p}" for p in problems])
    return text, data, load_key(key_path, {e["id"]: len(e["choices"]) for e in data["question"]})


def seal(day_dir: Path) -> list[Path]:
    """Write quiz.toml's seals and the reference answers from the key; return the files that changed."""
    text, data, key = quiz_and_key(day_dir)
    quiz_path, reference_path = day_dir / QUESTIONS_FILE, day_dir / REFERENCE_FILE
    new_text = sealed_text(text, data.get(SALT_FIELD) or secrets.token_hex(16), key)
    # Proof before writing: every question now opens with the key's letter, to the key's explanation.
    wrong = [q.id for q in load_quiz(quiz_path, new_text)
             if q.explanation(key[q.id].answer) != reflow(key[q.id].explanation)]
    if wrong:
        raise QuizError([f"cannot seal: the sealed file would not open with the key for {', '.join(wrong)}"])
    changed = []
    if new_text != text:
        tmp = quiz_path.with_name(quiz_path.name + ".tmp")
        tmp.write_text(new_text, encoding="utf-8")
        tmp.replace(quiz_path)
        changed.append(quiz_path)
    answers = {qid: entry.answer for qid, entry in key.items()}
    if not reference_path.is_file() or read_answers(reference_path) != answers:
        write_answers(reference_path, answers, REFERENCE_DOCSTRING)
        changed.append(reference_path)
    return changed


def seal_problems(day_dir: Path) -> list[str]:
    """How quiz.toml's seals and the reference answers differ from the key; empty when they are in step."""
    text, data, key = quiz_and_key(day_dir)
    salt = data.get(SALT_FIELD)
    if salt is None:
        return [f"{QUESTIONS_FILE} has no {SALT_FIELD} and no seals yet: run `{SEAL_COMMAND}`"]
    problems = []
    expected = sealed_text(text, salt, key)
    if expected != text:
        now = {e["id"]: e for e in data["question"]}
        stale = [e["id"] for e in tomllib.loads(expected)["question"]
                 if any(now[e["id"]].get(field) != e[field] for field in SEALED_FIELDS)]
        problems.append(f"the seals of {QUESTIONS_FILE} are out of date with {KEY_FILE}"
                        + (f" (questions {', '.join(stale)})" if stale else "") + f": run `{SEAL_COMMAND}`")
    reference = day_dir / REFERENCE_FILE
    if read_answers(reference) != {qid: entry.answer for qid, entry in key.items()}:
        problems.append(f"{REFERENCE_FILE} does not hold the answers of {KEY_FILE}: run `{SEAL_COMMAND}`")
    return problems


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
REFERENCE_DOCSTRING = (f"Reference answers to the self-check quiz, one per question.\n\nWritten from {KEY_FILE} "
                       f"by `{SEAL_COMMAND}`:\nedit the key, not this file.\n")


def _assigns_answers(node: ast.stmt) -> bool:
    targets = [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else (
        node.targets if isinstance(node, ast.Assign) else [])
    return any(isinstance(t, ast.Name) and t.id == "ANSWERS" for t in targets)


def read_answers(path: Path, required: bool = False) -> dict[str, str]:
    """ANSWERS from quiz_answers.py, read without running it; {} when the file does not exist.

    ``required`` is the grader's reading: the file must exist and hold its docstring and one
    ``ANSWERS = {...}``, nothing else, since code that would change ANSWERS is never run.
    """
    if not path.is_file():
        if required:
            raise QuizError([f"{path.name} not found at {path}: take the quiz, `python -m lab quiz`, to write it"])
        return {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as error:
        raise QuizError([f"{path} is not valid Python (line {error.lineno}): fix it, or delete it to "
                         "start the quiz again"]) from error
    read_not_run = f"{path.name} is read, not run, so "
    assignments = [node for node in tree.body if _assigns_answers(node) and getattr(node, "value", None) is not None]
    if len(assignments) > 1:
        raise QuizError([f"{path}: {read_not_run}ANSWERS must be assigned once, not on lines "
                         f"{', '.join(str(n.lineno) for n in assignments)}"])
    if required:
        docstring = tree.body[:1] if ast.get_docstring(tree, clean=False) is not None else []
        others = [node for node in tree.body if node not in assignments and node not in docstring
                  and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
        if others:
            line = path.read_text(encoding="utf-8").splitlines()[others[0].lineno - 1].strip()
            raise QuizError([f"{path}: {read_not_run}it must hold only its docstring and ANSWERS = {{...}}, "
                             f"not other code such as line {others[0].lineno}: {line[:60]}"])
        if not assignments:
            raise QuizError([f"{path}: it must define ANSWERS as a plain dict literal of question ids to letters, "
                             'e.g. ANSWERS = {"45-publisher-confirms": "b"}'])
    if not assignments:
        return {}
    node = assignments[0]
    if isinstance(node, ast.AugAssign):
        raise QuizError([f"{path}: {read_not_run}ANSWERS must be assigned with =, as a plain dict literal"])
    try:
        answers = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, RecursionError) as error:
        raise QuizError([f"{path}: ANSWERS must be a plain dict literal ({read_not_run}no names, calls or "
                         'comprehensions), e.g. {"45-publisher-confirms": "b"}']) from error
    if not isinstance(answers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
        raise QuizError([f"{path}: ANSWERS must map question ids to letters, e.g. "
                         '{"45-publisher-confirms": "b"}'])
    return answers


def answers_source(answers: dict[str, str], docstring: str) -> str:
    """The text of quiz_answers.py: the docstring, then ANSWERS sorted by question id."""
    body = "".join(f"    {json.dumps(qid)}: {json.dumps(letter)},\n" for qid, letter in sorted(answers.items()))
    value = "{\n" + body + "}" if answers else "{}"
    return f'"""{docstring}"""\n\nANSWERS: dict[str, str] = {value}\n'


def write_answers(path: Path, answers: dict[str, str], docstring_if_new: str = STUB_DOCSTRING) -> None:
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
    docstring = (docstring or docstring_if_new).replace("\\", "\\\\").replace('"""', "'''")
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
           shuffle: bool = False, seed: int | None = None,
           answers: Mapping[str, str] | None = None) -> list[Question]:
    """The questions to ask: of ``day``, in the course's order or shuffled (``seed``: reproducibly).

    With ``count``, the pick prefers what is left to learn: unanswered questions first, then those
    answered wrong, then those answered right; the questions picked keep their order.
    """
    chosen = [q for q in questions if day is None or q.day == day]
    if shuffle or seed is not None:
        random.Random(seed).shuffle(chosen)
    if not count:
        return chosen
    picked = {q.id for q in sorted(chosen, key=lambda q: still_to_learn(q, answers or {}))[:count]}
    return [q for q in chosen if q.id in picked]


def still_to_learn(q: Question, answers: Mapping[str, str]) -> int:
    """0: not answered; 1: answered wrong; 2: answered right (a sort key: the first are asked first)."""
    if q.id not in answers:
        return 0
    return 2 if q.is_right(answers[q.id].strip().lower()) else 1


def show_question(term: Terminal, q: Question, number: int, total: int) -> None:
    term.say()
    term.say(f"── Question {number} of {total} · Day {q.day} · {q.id} ──")
    term.say(q.prompt)
    term.say()
    for letter, choice in zip(q.letters, q.choices, strict=True):
        term.say(choice, indent=f"  {letter}) ", hanging="     ")


def ask_letter(term: Terminal, q: Question, again: bool) -> str | None:
    """One answer to ``q``: a letter, "skip", or None to stop; ``again`` after a wrong answer."""
    options = f"{q.letters[0]}-{q.letters[-1]}"
    while True:
        reply = term.ask(f"{'Try again' if again else 'Your answer'} ({options}; s to skip, q to stop): ")
        if reply is None or reply in ("q", "quit", "exit"):
            return None
        if reply in ("s", "skip"):
            return "skip"
        if len(reply) == 1 and reply in q.letters:
            return reply
        term.say(f"Answer with one letter from {options}, s to skip or q to stop.")


def read_more(term: Terminal, q: Question, root: Path) -> None:
    for line in where_to_read(q, root):  # never wrapped: an address is copied whole
        term.stdout.write(f"  {line}\n")


def say_right(term: Terminal, q: Question, given: str, root: Path) -> None:
    term.say(f"✓ Right: {given}.")
    explanation = q.explanation(given)
    term.say()
    # A digest that matches but a seal that does not open: quiz.toml was sealed from two keys.
    term.say(reflow(explanation) if explanation is not None else
             f"(The explanation does not open: quiz.toml's seals are out of date; authors run `{SEAL_COMMAND}`.)")
    term.say()
    term.say("Read more:")
    read_more(term, q, root)


def say_not_right(term: Terminal, q: Question, given: str, tried: list[str], root: Path) -> None:
    """Not right, and where to read; never which letter is right."""
    if len(tried) > 1:
        term.say(f"✗ Not right either: {given} is not the answer.")
        return
    term.say(f"✗ Not right: {given} is not the answer. The section that teaches it:")
    read_more(term, q, root)
    term.say("Read it and try again, or skip the question; your answer so far is saved.")


def take_question(term: Terminal, q: Question, answers: dict[str, str], answers_path: Path,
                  root: Path) -> tuple[list[str], bool]:
    """Ask ``q`` until it is answered right, skipped or the learner stops; each answer is saved at once.

    Returns the letters tried, in order, and whether the learner asked to stop.
    """
    tried: list[str] = []
    while True:
        given = ask_letter(term, q, again=bool(tried))
        if given is None or given == "skip":
            return tried, given is None
        if given in tried:
            term.say(f"You tried {given} already: it is not the answer.")
            continue
        tried.append(given)
        answers[q.id] = given
        write_answers(answers_path, answers)
        if q.is_right(given):
            say_right(term, q, given, root)
            return tried, False
        say_not_right(term, q, given, tried, root)


def run_session(questions: list[Question], answers_path: Path, root: Path, stdin: TextIO, stdout: TextIO,
                all_questions: list[Question] | None = None) -> int:
    """Ask ``questions``, recording each answer in ``answers_path`` as soon as it is given."""
    term = Terminal(stdin, stdout)
    answers = read_answers(answers_path)
    shown = display_path(answers_path, root)
    term.say(f"Week 7 self-check quiz: {len(questions)} question{'s' if len(questions) != 1 else ''}. "
             f"Answer with a letter; each answer is checked and saved in {shown}. A right answer is "
             "explained; after a wrong one, read the section it names and try again.")
    answered = first_try = later = skipped = 0
    for number, q in enumerate(questions, start=1):
        show_question(term, q, number, len(questions))
        tried, stop = take_question(term, q, answers, answers_path, root)
        if tried:
            answered += 1
            right = q.is_right(tried[-1])
            first_try += right and len(tried) == 1
            later += right and len(tried) > 1
        elif not stop:
            skipped += 1
        if stop:
            term.say()
            term.say("Stopped; the answers so far are saved.")
            break
    known = {q.id: q for q in (all_questions or questions)}
    graded = [qid for qid in answers if qid in known]
    correct = sum(known[qid].is_right(answers[qid].strip().lower()) for qid in graded)  # as graded
    summary = f"This session: {first_try + later} of {answered} right"
    summary += f" ({first_try} at the first try)" if later else ""
    term.say()
    term.say(summary + (f", {skipped} skipped." if skipped else "."))
    term.say(f"Overall: {len(graded)} of {len(known)} questions answered, {correct} right. "
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
        if getattr(args, "seal", False):
            return seal_command(course, stdout)
        questions_path, answers_path = paths(course)
        questions = load_quiz(questions_path)
        if args.day is not None and not any(q.day == args.day for q in questions):
            days = sorted({q.day for q in questions})
            raise QuizError([f"the quiz has no questions for day {args.day}; it has days {days[0]}-{days[-1]}"])
        if args.count is not None and args.count < 1:
            raise QuizError(["--count must be at least 1"])
        if args.list:
            return list_questions(questions, answers_path, stdout, args.day)
        chosen = select(questions, args.day, args.count, args.shuffle, args.seed, read_answers(answers_path))
        return run_session(chosen, answers_path, course.root, stdin, stdout, all_questions=questions)
    except QuizError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        stdout.write("\nStopped; the answers so far are saved.\n")
        return 130


def seal_command(course, stdout: TextIO) -> int:
    """Authors: write quiz.toml's seals and the reference answers from the key."""
    questions_path, _ = paths(course)
    changed = seal(questions_path.parent)
    for path in changed:
        stdout.write(f"sealed: rewrote {display_path(path, course.root)}\n")
    if not changed:
        stdout.write(f"sealed: {QUESTIONS_FILE} and {REFERENCE_FILE} already match {KEY_FILE}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.quiz --seal`, the authors' command; learners use `python -m lab quiz`."""
    from lab.course import load_course

    parser = argparse.ArgumentParser(prog="python -m lab.quiz", description="Authors' commands of the self-check quiz.")
    parser.add_argument("--seal", action="store_true", required=True,
                        help=f"write the seals of {QUESTIONS_FILE} and {REFERENCE_FILE} from {KEY_FILE}")
    parser.parse_args(argv)
    try:
        return seal_command(load_course(), sys.stdout)
    except QuizError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
