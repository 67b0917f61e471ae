"""The course site: builds strictly, and renders in a real browser.

The site is built with `mkdocs build --strict` into a temporary directory, served on 127.0.0.1 and
opened in headless Chromium, driven over the Chrome DevTools Protocol on a pipe
(`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4), so
no driver or browser download is needed. One browser serves every check: the home page (a
screenshot is kept at artifacts/site-home.png), each day's page (its notes, or the project and
revision guides of Days 48 and 49) with its heading, title and tab and no script errors, every
page's mermaid diagrams, and the search box.
"""

from __future__ import annotations

import base64
import functools
import http.server
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lab.course import ROOT
from lab.services import required

SCREENSHOT = ROOT / "artifacts" / "site-home.png"
SEARCH_TERM = "observability"
SEARCH_EXPECTS = "Day-47-Observability/notes/"  # a page the search term must find
WAIT = 60  # seconds to wait for any one condition in the browser
DAY_FOLDERS = sorted(path for path in ROOT.glob("Day-*") if path.is_dir() and re.match(r"Day-\d+-", path.name))
DAY_MAIN_PAGES = ("notes.md", "PROJECT-GUIDE.md", "REVISION-GUIDE.md")  # a day's page: the first it has

pytestmark = pytest.mark.timeout(300)  # a build and a browser start: more than the default allows


# ---------------------------------------------------------------- the site, built and served


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with --strict (any warning fails) into a temporary directory."""
    site_dir = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    build = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if build.returncode != 0:
        pytest.fail(f"`mkdocs build --strict` failed (exit {build.returncode}):\n{build.stderr[-4000:]}", pytrace=False)
    return site_dir


@pytest.fixture(scope="module")
def base_url(site):
    """The built site served over HTTP on 127.0.0.1, on a free port."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_site_builds_strictly(site):
    assert (site / "index.html").is_file(), "README.md should become the home page, site/index.html"
    assert (site / "search" / "search_index.json").is_file(), "the search plugin wrote no search index"


# ---------------------------------------------------------------- the browser


class Chromium:
    """Headless Chromium and a DevTools Protocol connection to it over --remote-debugging-pipe."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars",
             "--window-size=1440,900", "--remote-debugging-pipe"]

    def __init__(self, executable: str, profile: Path):
        commands_in, commands_out = os.pipe()  # we write, Chromium reads fd 3
        replies_in, replies_out = os.pipe()  # Chromium writes fd 4, we read

        def on_fds_3_and_4():
            os.dup2(commands_in, 3)
            os.dup2(replies_out, 4)

        with open(profile / "chromium.log", "wb") as log:
            self.process = subprocess.Popen(
                [executable, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(3, 4), preexec_fn=on_fds_3_and_4)
        os.close(commands_in)
        os.close(replies_out)
        self.log = profile / "chromium.log"
        self._commands = os.fdopen(commands_out, "wb")
        self._replies = replies_in
        self._unread = b""
        self._ids = itertools.count(1)
        self.events: list[dict] = []  # every event received, with its sessionId

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile go to self.events."""
        message = {"id": next(self._ids), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._commands.write(json.dumps(message).encode() + b"\0")
        self._commands.flush()
        deadline = time.monotonic() + WAIT
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply["result"]
            if "method" in reply:
                self.events.append(reply)

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._unread:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError(f"no DevTools reply to {waiting_for} within {WAIT} s; see {self.log}")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise ConnectionError(f"Chromium closed the DevTools pipe:\n{self.log.read_text(errors='replace')[-2000:]}")
            self._unread += chunk
        message, _, self._unread = self._unread.partition(b"\0")
        return json.loads(message)

    def close(self):
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._commands.close()
        os.close(self._replies)


class Tab:
    """One browser tab: navigate, evaluate JavaScript, wait for conditions, see its requests."""

    def __init__(self, browser: Chromium):
        self.browser = browser
        self.target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.send("Target.attachToTarget", targetId=self.target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params) -> dict:
        return self.browser.send(method, session=self.session, **params)

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        loaded = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        assert self.wait_for(loaded), f"{url} did not load within {WAIT} s"

    def evaluate(self, expression: str):
        reply = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str):
        """Evaluate `expression` until it is truthy or WAIT seconds pass; return its last value."""
        return self.poll(lambda: self.evaluate(expression))

    @staticmethod
    def poll(condition):
        """Call `condition` until it returns something truthy or WAIT seconds pass; return its last value."""
        deadline = time.monotonic() + WAIT
        while not (value := condition()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return value

    def events(self, method: str) -> list[dict]:
        return [e["params"] for e in self.browser.events if e["method"] == method and e.get("sessionId") == self.session]

    def requested_urls(self) -> list[str]:
        return [e["request"]["url"] for e in self.events("Network.requestWillBeSent")]

    def uncaught_errors(self) -> list[str]:
        details = [e["exceptionDetails"] for e in self.events("Runtime.exceptionThrown")]
        return [(d.get("exception", {}).get("description") or d["text"]).splitlines()[0] for d in details]

    def console_errors(self) -> list[str]:
        calls = [e for e in self.events("Runtime.consoleAPICalled") if e["type"] in ("error", "assert")]
        return [" ".join(str(arg.get("value", arg.get("description", ""))) for arg in call["args"]) for call in calls]

    def close(self):
        self.browser.send("Target.closeTarget", targetId=self.target)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = shutil.which("chromium")
    if not executable:
        message = "headless Chromium is not installed: `apt-get install chromium` (Debian/Ubuntu)"
        if "browser" in required():
            pytest.fail(f"{message} (LAB_REQUIRE_SERVICES names browser, so this is a failure)", pytrace=False)
        pytest.skip(message)
    chromium = Chromium(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture
def tab(browser, base_url):
    tab = Tab(browser)
    yield tab
    tab.close()


def offsite(urls: list[str], base_url: str) -> list[str]:
    local = urlsplit(base_url).netloc
    return [url for url in urls if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).netloc != local]


def built_pages(site: Path, pattern: str) -> list[str]:
    """Site-relative URLs of the built pages matching a glob, e.g. 'Day-*/notes/index.html'."""
    return sorted(path.parent.relative_to(site).as_posix() + "/" for path in site.glob(pattern))


# ---------------------------------------------------------------- the checks


@pytest.mark.browser
def test_home_page_renders_with_a_tab_per_day(tab, base_url, site):
    tab.open(base_url)
    heading = tab.wait_for("document.querySelector('article h1')?.textContent.trim()")
    assert heading, "the home page shows no heading: is README.md published as index.html?"
    title = tab.evaluate("document.title")
    assert "Microservices" in title, f"the home page's title is {title!r}, expected the site name"

    tabs = tab.evaluate("[...document.querySelectorAll('.md-tabs__link')].map(a => a.textContent.trim())")
    days = [re.match(r"Day-(\d+)", path)[1] for path in built_pages(site, "Day-*/*/index.html")]
    missing = [day for day in sorted(set(days)) if not any(t.startswith(f"Day {day} ") for t in tabs)]
    assert not missing, f"the navigation tabs {tabs} lack the days {missing}"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(tab.send("Page.captureScreenshot", format="png")["data"]))
    assert not tab.uncaught_errors(), f"JavaScript errors on the home page: {tab.uncaught_errors()}"


def day_main_page(folder: Path) -> str | None:
    """The page that stands for a day: its notes, or the project or revision guide of Days 48 and 49."""
    for name in DAY_MAIN_PAGES:
        if (folder / name).is_file():
            return f"{folder.name}/{name}"
    return None


# The h1's own text, without the permalink anchor ("¶") that the toc extension appends to it.
HEADING_TEXT = """(() => {
  const h1 = document.querySelector('article h1');
  if (!h1) return null;
  const copy = h1.cloneNode(true);
  copy.querySelectorAll('.headerlink').forEach(a => a.remove());
  return copy.textContent.trim();
})()"""


@pytest.mark.browser
@pytest.mark.parametrize("folder", DAY_FOLDERS, ids=lambda folder: re.match(r"Day-\d+", folder.name)[0])
def test_every_day_page_renders(folder, tab, base_url, site):
    """Each day's page (notes; Day 48's project guide; Day 49's revision guide) loads with its heading, title and tab."""
    source = day_main_page(folder)
    assert source, f"{folder.name} has none of {', '.join(DAY_MAIN_PAGES)}: the day has no page on the site"
    page = source.removesuffix(".md") + "/"  # as the hook publishes it: use_directory_urls
    assert (site / page / "index.html").is_file(), f"{source} was not published as {page}index.html"

    tab.open(base_url + page)
    heading = tab.wait_for(HEADING_TEXT)
    day = "Day " + re.match(r"Day-(\d+)", folder.name)[1]
    assert heading, f"{page} shows no <h1> in its article"
    assert heading.startswith(day), f"{page}'s heading is {heading!r}; it should start with {day!r}"
    title = tab.evaluate("document.title")
    assert title.startswith(heading), f"{page}'s title is {title!r}; the hook should make it start with {heading!r}"
    active = tab.evaluate("document.querySelector('.md-tabs__item--active')?.textContent.trim()")
    assert active and active.startswith(day + " "), f"on {page} the active tab is {active!r}, expected {day}"
    assert not tab.uncaught_errors(), f"JavaScript errors on {page}: {tab.uncaught_errors()}"
    assert not tab.console_errors(), f"errors in the console on {page}: {tab.console_errors()}"


# The badge a section's mark puts after its heading, as the reader's browser draws it.
SECTION_BADGES = """[...document.querySelectorAll('article h2.core, article h2.deep-dive')].map(h => {
  const after = getComputedStyle(h, '::after');
  return {id: h.id, mark: h.classList.contains('core') ? 'core' : 'deep-dive',
          badge: after.content.replace(/^"|"$/g, ''), display: after.display,
          width: parseFloat(after.width) || 0};
})"""


@pytest.mark.browser
@pytest.mark.parametrize("folder", DAY_FOLDERS, ids=lambda folder: re.match(r"Day-\d+", folder.name)[0])
def test_every_section_shows_whether_it_is_core_or_a_deep_dive(folder, tab, base_url, site):
    """The marks of tests/test_learning_path.py reach the reader: a visible badge on each section heading."""
    source = day_main_page(folder)
    tab.open(base_url + source.removesuffix(".md") + "/")
    tab.wait_for(HEADING_TEXT)
    badges = tab.evaluate(SECTION_BADGES)
    numbered = tab.evaluate("[...document.querySelectorAll('article h2')].filter(h => /^\\d+\\./.test(h.textContent.trim())).length")
    assert numbered and len(badges) == numbered, (
        f"{source}: {numbered} numbered sections, {len(badges)} of them marked core or deep dive on the page")
    wrong = [b for b in badges if b["badge"] != {"core": "core", "deep-dive": "deep dive"}[b["mark"]]
             or b["display"] == "none" or b["width"] <= 0]
    assert not wrong, f"{source}: these section badges are not shown as they should be: {wrong}"
    assert {b["mark"] for b in badges} == {"core", "deep-dive"}, f"{source}: a path has both kinds of section"


@pytest.mark.browser
def test_mermaid_diagrams_render_to_svg_without_a_cdn(tab, base_url, site):
    blocks = {page: (site / page / "index.html").read_text(encoding="utf-8").count('<pre class="mermaid">')
              for page in built_pages(site, "**/index.html")}
    with_mermaid = {page: count for page, count in blocks.items() if count}
    assert with_mermaid, "no built page has a ```mermaid block (Day 43's notes should)"

    for page, expected in sorted(with_mermaid.items()):  # every page: one bad diagram anywhere is a broken chapter
        check_diagrams(tab, base_url, page, expected)


def check_diagrams(tab: Tab, base_url: str, page: str, expected: int) -> None:
    tab.open(base_url + page)
    # Material draws each diagram into a closed shadow root: visible to DOM.getDocument(pierce), not to scripts.
    svgs: list[dict] = []

    def all_drawn():
        svgs[:] = mermaid_svgs(tab)
        return len(svgs) == expected

    assert tab.poll(all_drawn), f"{len(svgs)} of the {expected} mermaid blocks on {page} became <svg> within {WAIT} s"
    errors = [svg for svg in svgs if svg.get("aria-roledescription") == "error"]
    assert not errors, f"{len(errors)} diagram(s) on {page} rendered as Mermaid's syntax-error picture"

    urls = tab.requested_urls()
    assert any(url.endswith("/vendor/mermaid.min.js") for url in urls), "the vendored mermaid.min.js was not loaded"
    assert not offsite(urls, base_url), f"{page} requested files from other hosts: {offsite(urls, base_url)}"
    assert not tab.uncaught_errors(), f"JavaScript errors on {page}: {tab.uncaught_errors()}"


def mermaid_svgs(tab: Tab) -> list[dict]:
    """Attributes of each <svg> inside an element of class `mermaid`, shadow roots included."""
    found = []

    def walk(node: dict, in_diagram: bool):
        flat = node.get("attributes", [])
        attributes = dict(zip(flat[::2], flat[1::2], strict=True))
        if in_diagram and node["nodeName"].lower() == "svg":
            found.append(attributes)
            return
        in_diagram = in_diagram or "mermaid" in attributes.get("class", "").split()
        for child in node.get("children", []) + node.get("shadowRoots", []):
            walk(child, in_diagram)

    walk(tab.send("DOM.getDocument", depth=-1, pierce=True)["root"], False)
    return found


@pytest.mark.browser
def test_search_box_finds_a_term(tab, base_url):
    tab.open(base_url)
    assert tab.wait_for("document.querySelector('.md-search__input') !== null"), "the page has no search box"
    tab.evaluate("document.querySelector('.md-search__input').focus()")
    for key in SEARCH_TERM:  # typed as keystrokes: Material searches on keyup
        tab.send("Input.dispatchKeyEvent", type="keyDown", key=key, text=key)
        tab.send("Input.dispatchKeyEvent", type="keyUp", key=key)

    links: list[str] = []

    def expected_page_listed():
        links[:] = tab.evaluate("[...document.querySelectorAll('.md-search-result__link')].map(a => a.href)")
        return any(SEARCH_EXPECTS in link for link in links)

    assert tab.poll(expected_page_listed), \
        f"searching {SEARCH_TERM!r} should list {SEARCH_EXPECTS} within {WAIT} s; it lists {links}"
    assert not offsite(tab.requested_urls(), base_url), f"search requested other hosts: {tab.requested_urls()}"
