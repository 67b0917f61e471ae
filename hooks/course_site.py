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


def day_navigation(paths: set[str]) -> list[dict]:
    """Home, then one section per Day-NN-Topic folder listing the day's pages that exist."""
    nav: list[dict] = [{"Home": "README.md"}] if "README.md" in paths else []
    folders = {path.split("/")[0] for path in paths}
    days = sorted((int(day[1]), day[0], day[2]) for day in map(DAY_FOLDER.fullmatch, folders) if day)
    for number, folder, topic in days:
        pages = [{title: f"{folder}/{page}"} for title, page in DAY_PAGES if f"{folder}/{page}" in paths]
        if pages:
            nav.append({f"Day {number} — {topic.replace('-', ' ')}": pages})
    return nav


def pages_in(nav) -> set[str]:
    """The page paths listed anywhere in a navigation structure."""
    if isinstance(nav, str):
        return {nav}
    entries = nav.values() if isinstance(nav, dict) else nav
    return set().union(*map(pages_in, entries))


class FolderLinks(Treeprocessor, Extension):
    """Rewrites a link to a repository folder into a link to the folder's page, before MkDocs resolves it.

    MkDocs resolves relative links between files only; a link such as `Day-43-Microservices-Basics/`
    would be left as is and break in the built site.
    """

    def __init__(self) -> None:
        Treeprocessor.__init__(self)
        Extension.__init__(self)
        self.folder_pages: dict[str, str] = {}  # folder -> its page, POSIX paths from the root
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
            target = self.folder_pages.get(posixpath.normpath(posixpath.join(here, unquote(path))))
            if target:
                link.set("href", urlunsplit(("", "", posixpath.relpath(target, here or "."), query, fragment)))


folder_links = FolderLinks()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    config.markdown_extensions.append(folder_links)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = repository_root(config)
    paths = published_paths(config)
    config["nav"] = day_navigation(set(paths))
    in_nav = pages_in(config["nav"])
    for path in paths:
        if files.get_file_from_path(path):
            log.warning("'%s' is both in the repository root and in docs/; the docs/ copy is published", path)
            continue
        inclusion = InclusionLevel.UNDEFINED if path in in_nav else InclusionLevel.NOT_IN_NAV
        files.append(File.generated(config, path, abs_src_path=str(root / path), inclusion=inclusion))

    pages = {path for path in paths if path.endswith(".md")}
    folder_links.folder_pages = {}
    for folder in {posixpath.dirname(page) for page in pages}:
        for name in FOLDER_PAGES:
            if (page := posixpath.join(folder, name)) in pages:
                folder_links.folder_pages[folder or "."] = page
                break
    return files


def on_page_markdown(markdown: str, page: Page, **kwargs) -> str:
    folder_links.page_path = page.file.src_uri
    return markdown


def on_page_content(html: str, page: Page, **kwargs) -> str:
    """The navigation calls a day's pages "Notes", "Tasks"...; the browser tab and header show the page's heading."""
    headings = [item.title for item in page.toc.items if item.level == 1]
    if headings and not page.is_homepage and "title" not in page.meta:
        page.meta["title"] = headings[0]
    return html


def on_serve(server, config: MkDocsConfig, builder, **kwargs):
    """`mkdocs serve` watches docs/ and mkdocs.yml; also watch the published repository folders."""
    root = repository_root(config)
    for top in sorted({path.split("/")[0] for path in published_paths(config)}):
        server.watch(str(root / top))
    return server
