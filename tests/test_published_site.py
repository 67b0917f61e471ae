"""The published site holds no reference solution and no answer key of the quiz.

The site is built as CI publishes it, from this copy of the course with `mkdocs build --strict`
(with LAB_PUBLISHED_SITE=DIR, the site already built in DIR is checked instead). hooks/course_site.py
must leave every Day-*/solutions/ folder and the quiz key out of it. The checks go by path (no
built file sits in a solutions/ folder) and by content, since a page could include a solution
through a snippet or copy it into a code block: no built file is a copy of a solutions file, holds
a solution's text or one of its distinctive lines, the explanation of a quiz question, or a right
answer written as the key or the reference answers write it.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from lab import quiz
from lab.course import ROOT
from lab.export import course_files

SOLUTION_FILES = sorted(p for p in ROOT.glob("Day-*/solutions/**/*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
KEY_PATH = ROOT / f"Day-{quiz.QUIZ_DAY}-Revision" / quiz.KEY_FILE
MIN_LINE = 30  # characters: a shorter line of code (`return None`) says nothing about where it came from
DISTINCTIVE = 12  # lines looked for per solutions file, besides the file as a whole
VENDORED_SIZE = 1_000_000  # bytes: larger files are vendored, minified assets, never the home of course code
TAG = re.compile(r"<[^>]+>")
KEY_ANSWER_LINE = re.compile(r"""^\s*answer\s*=\s*["'][a-e]["']\s*$""", re.MULTILINE)

pytestmark = pytest.mark.timeout(300)  # a site build


def normalized(text: str) -> str:
    """Text as it reads, whatever the markup: whitespace collapsed, Markdown's code ticks and stars dropped."""
    return " ".join(text.replace("`", "").replace("*", "").split())


@dataclass(frozen=True)
class BuiltFile:
    path: str  # POSIX, relative to the site
    sha256: str
    raw: str  # "" for a binary file
    readable: str  # normalized(): markup stripped, entities decoded, JSON strings unpacked


def readable_text(name: str, raw: str) -> str:
    texts = [raw]
    if name.endswith(".json"):  # the search index holds every page's text as JSON strings of HTML
        try:
            texts += json_strings(json.loads(raw))
        except ValueError:
            pass
    if name.endswith((".html", ".json", ".xml")):
        texts += [html.unescape(TAG.sub(" ", text)) for text in list(texts)]
    return normalized("\n".join(texts))


def json_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in json_strings(item)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site of this copy of the course, built strictly as `make docs-build` builds it.

    With LAB_PUBLISHED_SITE=DIR, the site already built in DIR instead: the very files CI uploads.
    """
    if os.environ.get("LAB_PUBLISHED_SITE"):
        site_dir = Path(os.environ["LAB_PUBLISHED_SITE"]).resolve()
        assert (site_dir / "index.html").is_file(), f"LAB_PUBLISHED_SITE={site_dir} holds no built site"
        return site_dir
    site_dir = tmp_path_factory.mktemp("published-site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site_dir)],
                           cwd=ROOT, capture_output=True, text=True, timeout=240,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if build.returncode != 0:
        pytest.fail(f"`mkdocs build --strict` failed (exit {build.returncode}):\n{build.stderr[-4000:]}", pytrace=False)
    return site_dir


@pytest.fixture(scope="module")
def built(site) -> list[BuiltFile]:
    return [built_file(p.relative_to(site).as_posix(), p.read_bytes()) for p in sorted(site.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def readable_site(built) -> str:
    return "\n".join(f.readable for f in built)


def needs_solutions():
    if not SOLUTION_FILES:
        pytest.skip("this copy has no solutions/ folders (the student edition): nothing of them to look for")


def needs_key():
    if not KEY_PATH.is_file():
        pytest.skip(f"this copy has no {quiz.KEY_FILE} (the student edition): no key to look for")


@cache
def course_outside_solutions() -> tuple[frozenset[str], str]:
    """The course's text files but the solutions, normalized, by line and whole: what may be published."""
    lines, texts = set(), []
    for path in course_files(ROOT):
        rel = path.relative_to(ROOT).parts
        if len(rel) > 1 and rel[0].startswith("Day-") and rel[1] == "solutions" or path.stat().st_size > VENDORED_SIZE:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines.update(normalized(line) for line in text.splitlines())
        texts.append(normalized(text))
    return frozenset(lines), "\n".join(texts)


def distinctive_lines(path: Path) -> list[str]:
    """The longest lines of a solutions/*.py file that no other file of the course has: its own code."""
    if path.suffix != ".py":
        return []
    lines, text = course_outside_solutions()
    candidates = sorted({normalized(line) for line in path.read_text(encoding="utf-8").splitlines()} - lines,
                        key=lambda line: (-len(line), line))
    # The longest first, and no more than DISTINCTIVE of them: each costs a search of the whole course.
    found = []
    for line in candidates:
        if len(line) < MIN_LINE or len(found) == DISTINCTIVE:
            break
        if line not in text:
            found.append(line)
    return found


def built_file(path: str, data: bytes) -> BuiltFile:
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raw = ""
    return BuiltFile(path, hashlib.sha256(data).hexdigest(), raw, readable_text(path, raw))


def path_leaks(built: list[BuiltFile]) -> list[str]:
    return [f.path for f in built if "solutions" in f.path.split("/")[:-1] or f.path.endswith("quiz_key.toml")]


def copied_solutions(built: list[BuiltFile]) -> list[str]:
    by_digest = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in SOLUTION_FILES}
    return [f"{f.path} is {by_digest[f.sha256].relative_to(ROOT)}" for f in built if f.sha256 in by_digest]


def solution_text_leaks(readable_site: str) -> list[str]:
    leaks = []
    for path in SOLUTION_FILES:
        try:
            whole = normalized(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue
        found = [line for line in distinctive_lines(path) if line in readable_site]
        if len(whole) >= MIN_LINE and whole in readable_site:
            found.insert(0, "(the whole file)")
        if found:
            leaks.append(f"{path.relative_to(ROOT)}: {len(found)} of its lines, e.g. {found[0][:100]!r}")
    return leaks


def key_leaks(built: list[BuiltFile], readable_site: str) -> list[str]:
    key = tomllib.loads(KEY_PATH.read_text(encoding="utf-8"))
    leaks = []
    # Whole explanations: a sentence of one may well be a sentence of the notes too.
    shown = [qid for qid, entry in key.items() if normalized(entry["explanation"]) in readable_site]
    if shown:
        leaks.append(f"the explanations of {len(shown)} question(s) in plaintext, e.g. {shown[:3]}")
    pairs = re.compile("|".join(rf"""["']{re.escape(qid)}["']\s*:\s*["']{entry["answer"]}["']"""
                                for qid, entry in key.items()))
    leaks += [f"{f.path} maps question ids to their right answers" for f in built
              if pairs.search(f.raw) or pairs.search(f.readable)]
    leaks += [f"{f.path} holds `answer = \"x\"` lines, as the quiz key does" for f in built
              if KEY_ANSWER_LINE.search(f.raw)]
    return leaks


# ---------------------------------------------------------------- by path


def test_no_built_file_comes_from_a_solutions_folder_or_the_key(built):
    assert built, "the site build wrote no files"
    leaked = path_leaks(built)
    assert not leaked, (
        f"the site publishes {len(leaked)} file(s) of a solutions/ folder or the quiz key, e.g. {leaked[:5]}: "
        "hooks/course_site.py (NEVER_PUBLISHED) must leave every Day-*/solutions/ folder and quiz_key.toml out")


# ---------------------------------------------------------------- by content


def test_no_built_file_is_a_copy_of_a_solutions_file(built):
    needs_solutions()
    copies = copied_solutions(built)
    assert not copies, "the site holds copies of reference solutions:\n" + "\n".join(copies)


def test_no_built_file_holds_the_text_of_a_solution(readable_site):
    needs_solutions()
    leaks = solution_text_leaks(readable_site)
    assert not leaks, ("the site shows code that only the reference solutions have: a page includes or copies "
                       "a solutions file (a --8<-- snippet?):\n" + "\n".join(leaks))


def test_no_built_file_holds_the_quiz_key(built, readable_site):
    needs_key()
    leaks = key_leaks(built, readable_site)
    assert not leaks, "the site gives the quiz's answers away:\n" + "\n".join(leaks)


def test_the_quiz_published_is_sealed(built):
    """The questions are published (a link may point at them), but only with their seals."""
    quiz_toml = next((f for f in built if f.path.endswith(f"Revision/{quiz.QUESTIONS_FILE}")), None)
    if quiz_toml is None:
        pytest.skip("the site does not publish quiz.toml")
    data = tomllib.loads(quiz_toml.raw)
    assert not quiz.quiz_problems(data), "the published quiz.toml is not a valid, sealed quiz"
    assert not any(quiz.KEY_FIELDS & set(entry) for entry in data["question"]), "quiz.toml carries the key in the clear"


# ---------------------------------------------------------------- the checks can fail


def test_each_check_finds_what_a_leaky_site_would_hold():
    """A site that published the solutions as files, and as code in a page, fails every check above."""
    needs_solutions()
    needs_key()
    assert KEY_PATH in SOLUTION_FILES
    as_files = [built_file(p.relative_to(ROOT).as_posix(), p.read_bytes()) for p in SOLUTION_FILES]
    page = "<pre><code>" + "".join(
        f"<span>{html.escape(line)}</span>\n" for p in SOLUTION_FILES if p.suffix == ".py"
        for line in p.read_text(encoding="utf-8").splitlines()) + "</code></pre>"
    explained = "".join(f"<p>{html.escape(entry['explanation'])}</p>"
                        for entry in tomllib.loads(KEY_PATH.read_text(encoding="utf-8")).values())
    as_page = [built_file("leaky/index.html", (page + explained).encode())]
    assert len(path_leaks(as_files)) == len(as_files)
    assert len(copied_solutions(as_files)) == len(SOLUTION_FILES)
    python = [p for p in SOLUTION_FILES if p.suffix == ".py"]
    leaks = solution_text_leaks(as_page[0].readable)
    assert len(leaks) >= 0.8 * len(python), (
        f"only {len(leaks)} of {len(python)} solutions/*.py files have a line of {MIN_LINE}+ characters that no "
        f"other file of the course has, so the check by content would miss the others")
    raw_key = key_leaks(as_files, "\n".join(f.readable for f in as_files))
    assert any("in plaintext" in leak for leak in raw_key) and any("answer = " in leak for leak in raw_key)
    assert any("maps question ids" in leak for leak in raw_key), "the reference quiz_answers.py went unnoticed"
    assert any("in plaintext" in leak for leak in key_leaks(as_page, as_page[0].readable))
