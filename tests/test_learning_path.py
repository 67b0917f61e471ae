"""Each day's chapter opens with a path through it that fits the day, and marks its sections.

The path is an admonition at the top of the chapter::

    !!! abstract "Today's path: 5 h 30 min"

        | step | what | time |
        |---|---|---|
        | Read | § 1-4, § 6 (the core sections) | 1 h 50 min |
        | Run | examples 01, 03 | 20 min |
        | Do | tasks `boundaries`, `resilient-client`, `inventory-service` | 3 h |
        | Check | the checkpoints, `make grade DAY=43` | 20 min |

        **Optional, and for whom:** ...

Its times add up to its total, the total fits the day's budget (4-6 h on a weekday, 6-8 h on Days
48-49), the reading time is what the core sections take at about 150 words a minute, and every core
task of the day's tasks.toml is on it. Every numbered section (``## 4. ...``) says where it starts
whether it is core or a deep dive (``{ .core }`` / ``{ .deep-dive }``, shown as a badge on the site),
and every core section ends with a "Check yourself" block.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.course import CORE, ROOT, load_course

WORDS_PER_MINUTE = 150
BUDGET_MINUTES = {48: (360, 480), 49: (360, 480)}  # the weekend; weekdays: 4 to 6 hours
WEEKDAY = (240, 360)
CHAPTERS = {43: "notes.md", 44: "notes.md", 45: "notes.md", 46: "notes.md", 47: "notes.md",
            48: "PROJECT-GUIDE.md", 49: "REVISION-GUIDE.md"}
PATH_TITLE = re.compile(r'^!!! abstract "Today\'s path: (?P<total>[^"]+)"\s*$', re.M)
ROW = re.compile(r"^    \| *(?P<step>[^|]+?) *\| *(?P<what>[^|]+?) *\| *(?P<time>[^|]+?) *\|\s*$", re.M)
SECTION = re.compile(r"^## (?P<number>\d+)\. (?P<title>.+?)(?: \{ ?:? ?(?P<marks>[^}]*)\})?\s*$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CHECKPOINT = re.compile(r'^!!! question "Check yourself', re.M)


def minutes(text: str) -> int:
    """``1 h 40 min``, ``2 h``, ``25 min`` -> minutes."""
    match = re.fullmatch(r"(?:(\d+) h)? ?(?:(\d+) min)?", text.strip())
    assert match and any(match.groups()), f"a time is written '1 h 40 min', '2 h' or '25 min', got {text!r}"
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def day_folder(number: int) -> Path:
    return next(ROOT.glob(f"Day-{number}-*"))


def chapter(number: int) -> str:
    return (day_folder(number) / CHAPTERS[number]).read_text(encoding="utf-8")


def sections(text: str) -> list[dict]:
    """The numbered ``##`` sections: number, title, marks and body (up to the next ``##``)."""
    heads = list(SECTION.finditer(text))
    found = []
    for index, head in enumerate(heads):
        end = heads[index + 1].start() if index + 1 < len(heads) else len(text)
        body = text[head.end():end]
        body = body.split("\n## ", 1)[0]  # an unnumbered ## ends it too
        found.append({"number": int(head["number"]), "title": head["title"],
                      "marks": set((head["marks"] or "").replace(".", " ").split()), "body": body})
    return found


def words(markdown: str) -> int:
    prose = FENCE.sub("", markdown)
    prose = re.sub(r"^\s*--8<--.*$", "", prose, flags=re.M)
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", prose))


def path_of(text: str) -> tuple[int, list[dict]]:
    title = PATH_TITLE.search(text)
    assert title, "the chapter must open with its path: !!! abstract \"Today's path: <total>\" (see this file's docstring)"
    block = text[title.end():].split("\n\n", 2)
    table = "\n\n".join(block[:2])
    rows = [row.groupdict() for row in ROW.finditer(table)
            if row["step"].lower() not in ("step", "---") and not set(row["step"]) <= set("-:")]
    return minutes(title["total"]), rows


@pytest.mark.parametrize("number", sorted(CHAPTERS))
def test_the_chapter_opens_with_a_path_that_fits_the_day(number):
    text = chapter(number)
    total, rows = path_of(text)
    assert rows, "the path's table has rows: step | what | time"
    assert PATH_TITLE.search(text).start() < (SECTION.search(text) or re.search(r"\Z", text)).start(), \
        "the path comes before the first section"
    summed = sum(minutes(row["time"]) for row in rows)
    assert summed == total, f"Day {number}: the path's rows add up to {summed} min, its title says {total} min"
    low, high = BUDGET_MINUTES.get(number, WEEKDAY)
    assert low <= total <= high, f"Day {number}: the path takes {total} min; the day's budget is {low}-{high} min"


@pytest.mark.parametrize("number", sorted(CHAPTERS))
def test_every_section_says_whether_it_is_core_or_a_deep_dive(number):
    found = sections(chapter(number))
    assert found, f"Day {number}: no numbered sections found"
    unmarked = [f"§ {s['number']} {s['title']}" for s in found if len(s["marks"] & {"core", "deep-dive"}) != 1]
    assert not unmarked, (f"Day {number}: mark each of these where it starts, '## N. Title {{ .core }}' or "
                          f"'{{ .deep-dive }}': {unmarked}")


@pytest.mark.parametrize("number", sorted(CHAPTERS))
def test_the_reading_time_is_what_the_core_sections_take(number):
    text = chapter(number)
    _, rows = path_of(text)
    read = [minutes(row["time"]) for row in rows if row["step"].strip().lower() == "read"]
    assert len(read) == 1, f"Day {number}: the path has one 'Read' row"
    core_words = sum(words(s["body"]) for s in sections(text) if "core" in s["marks"])
    pace = core_words / WORDS_PER_MINUTE
    assert 0.8 * pace <= read[0] <= 1.6 * pace + 10, (
        f"Day {number}: the core sections hold {core_words} words, about {pace:.0f} min at "
        f"{WORDS_PER_MINUTE} words a minute (plus diagrams, code and checkpoints); the path says {read[0]} min")


@pytest.mark.parametrize("number", sorted(CHAPTERS))
def test_every_core_section_ends_with_a_checkpoint(number):
    missing = [f"§ {s['number']} {s['title']}" for s in sections(chapter(number))
               if "core" in s["marks"] and not CHECKPOINT.search(s["body"])
               and not re.match(r"(Summary|Common mistakes|Glossary|Further reading|Now do)", s["title"])]
    assert not missing, f"Day {number}: these core sections need a '!!! question \"Check yourself\"' block: {missing}"


@pytest.mark.parametrize("day", [d for d in load_course().days if d.tasks], ids=lambda d: str(d.number))
def test_every_core_task_is_on_the_path(day):
    if day.number not in CHAPTERS:
        pytest.skip("no chapter")
    _, rows = path_of(chapter(day.number))
    on_path = " ".join(row["what"] for row in rows)
    missing = [t.id for t in day.tasks if t.track == CORE and f"`{t.id}`" not in on_path]
    assert not missing, f"Day {day.number}: the path's 'Do' row names every core task in backticks; missing {missing}"
