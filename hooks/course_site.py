"""MkDocs hook: publish the course from the repository root.

The pages are the repository's own Markdown files, not copies kept in docs/ (which holds only
site assets): README.md is the home page and each Day-*/ folder a chapter. Every other file of the
repository is published beside them, so a relative link to an example script, a task stub or an
image resolves as it does on GitHub. The reference solutions (every Day-*/solutions/ folder) and
the quiz's answer key are the exception: never published, whichever edition is built. A link to a
folder opens the folder's page. The navigation is built by day from whichever of the day's pages
exist at build time.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page
from pathspec import GitIgnoreSpec

log = logging.getLogger("mkdocs.hooks.course_site")

# Never published, whatever .gitignore says (gitignore syntax, relative to the repository root).
NEVER_PUBLISHED = [".git/", ".venv/", "venv/", "node_modules/", "__pycache__/", "*.pyc", ".DS_Store"]
# Nothing a learner receives holds a reference solution or the quiz's answer key, and readers are
# learners: left out of the site even when it is built from the full course (as CI does).
NEVER_PUBLISHED += ["/Day-*/solutions/", "quiz_key.toml"]

DAY_FOLDER = re.compile(r"Day-(\d+)-(.+)")

# A day's pages in navigation order: (title, path inside the day's folder).
# In this order; a day's tab opens its first page, so each day's chapter comes first.
DAY_PAGES = [
    ("Notes", "notes.md"),
    ("Project guide", "PROJECT-GUIDE.md"),
    ("Revision guide", "REVISION-GUIDE.md"),
    ("Contracts", "CONTRACTS.md"),
    ("Examples", "examples/README.md"),
    ("Tasks", "tasks/README.md"),
]

# The page a link to a folder opens: the first of these the folder has.
FOLDER_PAGES = ["README.md", "index.md", "notes.md", "PROJECT-GUIDE.md", "REVISION-GUIDE.md"]


def repository_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def published_paths(config: MkDocsConfig) -> list[str]:
    """Repository files to publish, as POSIX paths from the root: all but ignored ones and the docs/site dirs."""
    root = repository_root(config)
    rules = list(NEVER_PUBLISHED)
    for own_dir in (Path(config.docs_dir).resolve(), Path(config.site_dir).resolve()):
        if own_dir.is_relative_to(root):
            rules.append(f"/{own_dir.relative_to(root).as_posix()}/")
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        rules += gitignore.read_text(encoding="utf-8").splitlines()
    ignored = GitIgnoreSpec.from_lines(rules)

    paths = []
    for folder, subfolders, filenames in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else here + "/"
        subfolders[:] = sorted(d for d in subfolders if not ignored.match_file(f"{prefix}{d}/"))
        paths += [prefix + name for name in sorted(filenames) if not ignored.match_file(prefix + name)]
    return paths


def day_navigation(paths: set[str], root: Path | None = None) -> list[dict]:
    """Home, then one section per Day-NN-Topic folder listing the day's pages that exist.

    Every published page has a place: the home page's section also lists the other pages at the
    root (CONTRIBUTING.md), and a day's section, after its DAY_PAGES, the day's other pages
    (bench/README.md, chassis/README.md...), so that none is reached only through a link.
    """
    nav: list[dict] = []
    if "README.md" in paths:
        others = [{page_title(page): page} for page in sorted(paths) if page.endswith(".md") and "/" not in page
                  and page != "README.md"]
        nav.append({"Home": [{"Home": "README.md"}, *others]} if others else {"Home": "README.md"})
    folders = {path.split("/")[0] for path in paths}
    days = sorted((int(day[1]), day[0], day[2]) for day in map(DAY_FOLDER.fullmatch, folders) if day)
    for number, folder, topic in days:
        listed = [f"{folder}/{page}" for _, page in DAY_PAGES]
        pages = [{title: f"{folder}/{page}"} for title, page in DAY_PAGES if f"{folder}/{page}" in paths]
        pages += [{page_title(page.removeprefix(folder + "/")): page} for page in sorted(paths)
                  if page.startswith(folder + "/") and page.endswith(".md") and page not in listed]
        if pages:
            nav.append({f"Day {number} — {day_topic(topic, root / pages[0][next(iter(pages[0]))] if root else None)}": pages})
    return nav


# A page outside DAY_PAGES is named by its folder (bench/README.md: "Benchmarks") or its file name.
PAGE_TITLES = {"bench": "Benchmarks", "CONTRIBUTING": "Contributing"}


def page_title(path: str) -> str:
    folder, _, name = path.rpartition("/")
    stem = posixpath.basename(folder) if name in ("README.md", "index.md") and folder else name.removesuffix(".md")
    return PAGE_TITLES.get(stem, stem.replace("-", " ").replace("_", " ").capitalize())


def day_topic(folder_topic: str, first_page: Path | None) -> str:
    """The topic of a folder name, with its words spelt as the day's first heading spells them.

    A folder name cannot tell "Event-Driven" from two words: Day-45-Event-Driven is "Event-Driven"
    in its notes' heading, so the tab says "Event-Driven" rather than "Event Driven".
    """
    words = folder_topic.split("-")
    try:
        heading = first_page.read_text(encoding="utf-8").split("\n", 1)[0] if first_page else ""
    except OSError:
        heading = ""
    found = re.search(r"\b" + r"[\s-]".join(map(re.escape, words)) + r"\b", heading, re.IGNORECASE)
    return found[0] if found else " ".join(words)


def pages_in(nav) -> set[str]:
    """The page paths listed anywhere in a navigation structure."""
    if isinstance(nav, str):
        return {nav}
    entries = nav.values() if isinstance(nav, dict) else nav
    return set().union(*map(pages_in, entries))


class FolderLinks(Treeprocessor, Extension):
    """Rewrites a link to a repository folder into a link to the folder's page, before MkDocs resolves it.

    MkDocs resolves relative links between files only; a link such as `Day-43-Microservices-Basics/`
    would be left as is and break in the built site. A link to a source file that has a page of its
    own (source_page()) opens that page; the page itself links to the raw file.
    """

    def __init__(self) -> None:
        Treeprocessor.__init__(self)
        Extension.__init__(self)
        self.folder_pages: dict[str, str] = {}  # folder -> its page, POSIX paths from the root
        self.source_pages: dict[str, str] = {}  # source file -> its page (source_page())
        self.page_path = "README.md"  # the page being rendered

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        # Priority above MkDocs' own link resolver (0), so that it sees the rewritten link.
        md.treeprocessors.register(self, "course_folder_links", 1)

    def run(self, root):
        here = posixpath.dirname(self.page_path)
        for link in root.iter("a"):
            scheme, netloc, path, query, fragment = urlsplit(link.get("href", ""))
            if scheme or netloc or not path or path.startswith("/"):
                continue
            linked = posixpath.normpath(posixpath.join(here, unquote(path)))
            target = self.folder_pages.get(linked) or (None if self.page_path.startswith(SOURCE_PAGES)
                                                       else self.source_pages.get(linked))
            if target:
                link.set("href", urlunsplit(("", "", posixpath.relpath(target, here or "."), query, fragment)))


folder_links = FolderLinks()

# A source file that a page links to gets a page of its own under source/: the file highlighted,
# with the site's navigation and search box around it and a link to the raw file, instead of bare
# text (or, for .yml, a download). Source pages stay out of the search index: the code is not prose.
SOURCE_PAGES = "source/"
SOURCE_LANGUAGES = {".py": "python", ".yml": "yaml", ".yaml": "yaml", ".toml": "toml"}
MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$", re.MULTILINE)
SNIPPET_LINE = re.compile(r"^([ \t]*)(?=-+8<-+)", re.MULTILINE)


def linked_sources(root: Path, pages: list[str], published: set[str]) -> list[str]:
    """The published .py/.yml/.toml files that some page links to."""
    found = set()
    for page in pages:
        here = posixpath.dirname(page)
        for inline, reference in MARKDOWN_LINK.findall((root / page).read_text(encoding="utf-8")):
            scheme, netloc, path, _, _ = urlsplit(inline or reference)
            if scheme or netloc or not path or path.startswith("/"):
                continue
            target = posixpath.normpath(posixpath.join(here, unquote(path)))
            if target in published and posixpath.splitext(target)[1] in SOURCE_LANGUAGES:
                found.add(target)
    return sorted(found)


def source_page(path: str, text: str) -> str:
    """The Markdown of a source file's page: its path as the heading, a link to the raw file, the code."""
    page = SOURCE_PAGES + path + ".md"
    raw = posixpath.relpath(path, posixpath.dirname(page))
    longest_run = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest_run + 1)
    language = SOURCE_LANGUAGES[posixpath.splitext(path)[1]]
    code = SNIPPET_LINE.sub(r"\1;", text.rstrip("\n"))  # `;--8<--` is shown as `--8<--`, not included
    return (f"---\nsearch:\n  exclude: true\n---\n\n# `{path}`\n\n"
            f"The file as it is in the course's repository: [open the raw file]({raw}).\n\n"
            f'{fence}{language} linenums="1" title="{posixpath.basename(path)}"\n{code}\n{fence}\n')


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    config.markdown_extensions.append(folder_links)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = repository_root(config)
    paths = published_paths(config)
    config["nav"] = day_navigation(set(paths), root)
    in_nav = pages_in(config["nav"])
    for path in paths:
        if files.get_file_from_path(path):
            log.warning("'%s' is both in the repository root and in docs/; the docs/ copy is published", path)
            continue
        inclusion = InclusionLevel.UNDEFINED if path in in_nav else InclusionLevel.NOT_IN_NAV
        files.append(File.generated(config, path, abs_src_path=str(root / path), inclusion=inclusion))

    pages = {path for path in paths if path.endswith(".md")}
    glossaries.clear()  # read again on each build: `mkdocs serve` rebuilds after an edit
    folder_links.source_pages = {}
    for path in linked_sources(root, sorted(pages), set(paths)):
        try:
            text = (root / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        page = SOURCE_PAGES + path + ".md"
        source = File.generated(config, page, content=source_page(path, text), inclusion=InclusionLevel.NOT_IN_NAV)
        source.abs_src_path = str(root / path)  # the content stays the page's; the last-updated date is the file's
        files.append(source)
        folder_links.source_pages[path] = page

    folder_links.folder_pages = {}
    for folder in {posixpath.dirname(page) for page in pages}:
        for name in FOLDER_PAGES:
            if (page := posixpath.join(folder, name)) in pages:
                folder_links.folder_pages[folder or "."] = page
                break
    return files


# Glossary tooltips: each day's notes end with a glossary table (| Term | Meaning |); its terms are
# defined as abbreviations on every page of the day, so that a term in the text shows its meaning
# on hover (Material's content.tooltips). "Dead-letter exchange (DLX)" defines both names, "Durable /
# persistent" both words; "Consumer group (Redis)" only the term, "(Redis)" being a qualifier.
GLOSSARY_HEADING = re.compile(r"^## .*\bGlossary\b.*$", re.MULTILINE)
GLOSSARY_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$", re.MULTILINE)
ALIAS = re.compile(r"^(.+?)\s*\(([A-Z]{2,}|[a-z]{2,5})\)$")
QUALIFIER = re.compile(r"\s*\([^)]*\)$")
MARKUP = re.compile(r"`|\*|\[([^\]]*)\]\([^)]*\)")


def plain(text: str) -> str:
    return MARKUP.sub(lambda m: m[1] or "", text).replace('"', "'").strip()


def glossary_terms(notes: str) -> dict[str, str]:
    """Term -> meaning, from the glossary table of a day's notes ({} when it has none)."""
    heading = GLOSSARY_HEADING.search(notes)
    if not heading:
        return {}
    section = notes[heading.end():]
    section = section[: m.start()] if (m := re.search(r"^## ", section, re.MULTILINE)) else section
    terms = {}
    for term, meaning in GLOSSARY_ROW.findall(section):
        term = plain(term)
        if term == "Term" or set(term) <= set("-: "):  # the header row and the delimiter row
            continue
        names = list(ALIAS.match(term).groups()) if ALIAS.match(term) else [QUALIFIER.sub("", term)]
        for name in (part.strip() for alias in names for part in alias.split(" / ")):
            if len(name) >= 3 and "]" not in name:
                terms[name] = plain(meaning)
                if name[0].isupper() and name.split()[0][1:].islower():  # "Binding" in a sentence is "binding"
                    terms.setdefault(name[0].lower() + name[1:], plain(meaning))
    return terms


glossaries: dict[str, dict[str, str]] = {}  # day folder -> its glossary


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **kwargs) -> str:
    folder_links.page_path = page.file.src_uri
    if config.repo_url and config.edit_uri and not page.edit_url:
        # MkDocs gives no edit link to a generated file, which every page here is; its source is the
        # repository's file of the same path (a source page's, the file it shows).
        path = page.file.src_uri
        path = path[len(SOURCE_PAGES):-len(".md")] if path.startswith(SOURCE_PAGES) else path
        page.edit_url = f"{config.repo_url.rstrip('/')}/{config.edit_uri.strip('/')}/{path}"
    day = page.file.src_uri.split("/")[0]
    if not DAY_FOLDER.fullmatch(day) or page.file.src_uri.startswith(SOURCE_PAGES):
        return markdown
    if day not in glossaries:
        notes = repository_root(config) / day / "notes.md"
        glossaries[day] = glossary_terms(notes.read_text(encoding="utf-8")) if notes.is_file() else {}
    definitions = [f"*[{term}]: {meaning}" for term, meaning in glossaries[day].items()]
    return markdown + ("\n\n" + "\n".join(definitions) + "\n" if definitions else "")


def on_page_content(html: str, page: Page, **kwargs) -> str:
    """The navigation calls a day's pages "Notes", "Tasks"...; the browser tab and header show the page's heading.

    A diagram's Mermaid source is left out of the search index (Material's search skips an element
    with data-search-exclude), so that a result's preview is never `flowchart LR subgraph ...`.
    """
    headings = [item.title for item in page.toc.items if item.level == 1]
    if headings and not page.is_homepage and "title" not in page.meta:
        page.meta["title"] = headings[0]
    return html.replace('<div class="diagram">', '<div class="diagram" data-search-exclude>')


def on_serve(server, config: MkDocsConfig, builder, **kwargs):
    """`mkdocs serve` watches docs/ and mkdocs.yml; also watch the published repository folders."""
    root = repository_root(config)
    for top in sorted({path.split("/")[0] for path in published_paths(config)}):
        server.watch(str(root / top))
    return server
