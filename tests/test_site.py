"""The course site: builds strictly, and renders in a real browser as a reader sees it.

The site is built with `mkdocs build --strict` into a temporary directory, served on 127.0.0.1 and
opened in headless Chromium, driven over the Chrome DevTools Protocol on a pipe
(`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4), so
no driver or browser download is needed. One browser serves every check: the home page, each
day's page (its notes, or the project and revision guides of Days 48 and 49) with its heading,
title and tab and no script errors, and the search box. Every page is then opened at 1280 px and
on a 390 px phone: each diagram is drawn with its smallest label at least 10 px, only pages with a
diagram load Mermaid, no code block scrolls sideways at 1280 px, no table is wider than a phone,
and no request leaves 127.0.0.1. A diagram enlarges to the full screen and pans and zooms by mouse,
keyboard and two fingers; a link followed inside the site swaps the page (instant navigation).
The time to DOMContentLoaded of the largest page is printed, not asserted. Measurements go to
artifacts/site-measurements.txt, screenshots to artifacts/ (site-home.png, site-home-phone.png,
site-chapter.png, site-diagram-enlarged.png), which CI keeps.
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

# A build, a browser start and a survey of every page at two screen sizes: more than the default allows.
# One worker runs the whole module, so that the site is built and surveyed once, not once per worker.
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("course-site")]


# ---------------------------------------------------------------- the site, built and served


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An HTTP server on 127.0.0.1, on a free port, for the site directory (served once the site is built)."""
    site_dir = tmp_path_factory.mktemp("site")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site_dir)))
    yield server, site_dir
    server.server_close()


@pytest.fixture(scope="module")
def site(server) -> Path:
    """The site, built with --strict (any warning fails) for the address it is served at.

    Material's instant navigation follows a link only when its address is in the sitemap, which
    names pages by site_url (LAB_SITE_URL): built for another port, every link would reload the page.
    """
    httpd, site_dir = server
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    build = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1",
                                "LAB_SITE_URL": f"http://127.0.0.1:{httpd.server_address[1]}/"})
    if build.returncode != 0:
        pytest.fail(f"`mkdocs build --strict` failed (exit {build.returncode}):\n{build.stderr[-4000:]}", pytrace=False)
    return site_dir


@pytest.fixture(scope="module")
def base_url(server, site):
    """The built site served over HTTP."""
    httpd, _ = server
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


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


# ---------------------------------------------------------------- what a reader sees: every page, surveyed

DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
MIN_LABEL_PX = 10  # the smallest diagram label a reader can read at arm's length, as rendered
DIAGRAM_BLOCK = '<div class="diagram"'  # a ```mermaid block, as mkdocs.yml's fence and the hook write it
MERMAID = "/assets/javascripts/vendor/mermaid.min.js"
SCREENSHOTS = ROOT / "artifacts"
SOURCE_PAGES = "source/"  # where the hook publishes a linked source file as a page
SOURCE_SUFFIXES = (".py", ".yml", ".yaml", ".toml")

# Each diagram of the page: whether it was drawn, the smallest label as rendered (font size times
# the scale from the diagram's own units to the screen) and whether it scrolls sideways.
DIAGRAMS = r"""[...document.querySelectorAll('article div.diagram')].map(d => {
  const headings = [...document.querySelectorAll('article h1, article h2, article h3')]
    .filter(h => h.compareDocumentPosition(d) & Node.DOCUMENT_POSITION_FOLLOWING);
  const section = (headings.pop()?.textContent || '').replace('¶', '').trim();
  const svg = d.querySelector('.diagram__scroll > svg');
  if (!svg) return {section, state: d.dataset.state || 'not drawn'};
  let smallest = Infinity, text = '';
  for (const label of svg.querySelectorAll('text, foreignObject span, foreignObject div, foreignObject p')) {
    const ctm = (label.closest('foreignObject') || label).getScreenCTM();
    if (!label.textContent.trim() || !ctm || !label.getClientRects().length) continue;
    const px = parseFloat(getComputedStyle(label).fontSize) * Math.hypot(ctm.a, ctm.b);
    if (px < smallest) [smallest, text] = [px, label.textContent.trim().slice(0, 40)];
  }
  const scroll = svg.parentElement;
  return {section, state: d.dataset.state, shown: svg.getBoundingClientRect().width > 0,
          smallest: Number.isFinite(smallest) ? Math.round(smallest * 10) / 10 : null, text,
          scrolls: scroll.scrollWidth > scroll.clientWidth + 1,
          enlarge: !!d.querySelector('button.diagram__enlarge')};
})"""

# Each visible code block: does it scroll sideways, and does the copy button cover its text?
CODE_BLOCKS = r"""[...document.querySelectorAll('article pre > code')].filter(c => c.getClientRects().length).map(c => {
  const box = c.getBoundingClientRect(), style = getComputedStyle(c);
  const textRight = box.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
  const button = c.parentElement.querySelector('.md-clipboard')?.getBoundingClientRect();
  const lines = c.textContent.split('\n');
  const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
  return {scrolls: c.scrollWidth > c.clientWidth + 1, longest: longest.length, line: longest.trim().slice(0, 70),
          covered: !!button && button.width > 0 && button.left < textRight && button.bottom > box.top};
})"""

# Each visible table: does it scroll sideways (Material's wrapper scrolls), or stick out of the page?
TABLES = r"""[...document.querySelectorAll('article table:not(.highlighttable)')].filter(t => t.getClientRects().length).map(t => {
  const wrapper = t.closest('.md-typeset__scrollwrap'), box = t.getBoundingClientRect();
  return {wide: (wrapper ? wrapper.scrollWidth > wrapper.clientWidth + 1 : false) || box.right > innerWidth + 1 || box.left < -1,
          head: [...t.querySelectorAll('th')].map(th => th.textContent.trim()).join(' | ').slice(0, 80)};
})"""

ALL_DRAWN = "[...document.querySelectorAll('article div.diagram')].every(d => ['drawn', 'error'].includes(d.dataset.state))"


def page_name(page: str) -> str:
    return page or "(home)"


def survey(tab: Tab, base_url: str, site: Path, viewport: dict) -> dict[str, dict]:
    """Every built page opened fresh at one screen size: what it requested, its diagrams, code and tables."""
    tab.send("Emulation.setDeviceMetricsOverride", **viewport)
    seen = {}
    for page in built_pages(site, "**/index.html"):
        page = "" if page == "./" else page
        if page.startswith(SOURCE_PAGES):  # a source file's page: one highlighted block, checked on its own
            continue
        html = (site / page / "index.html").read_text(encoding="utf-8")
        before = len(tab.requested_urls())
        tab.open(base_url + page)
        diagrams = html.count(DIAGRAM_BLOCK)
        drawn = tab.wait_for(ALL_DRAWN) if diagrams else True
        # Let the page settle (its scripts loaded, idle) before asking what it fetched.
        tab.evaluate("new Promise(done => requestIdleCallback(() => done(true), {timeout: 2000}))")
        urls = tab.requested_urls()[before:]
        seen[page] = {
            "diagrams_in_html": diagrams, "all_drawn": bool(drawn),
            "mermaid": any(urlsplit(url).path.endswith(MERMAID) for url in urls)
            or tab.evaluate("'mermaid' in window || !!document.querySelector('script[src*=\"mermaid\"]')"),
            "offsite": offsite(urls, base_url),
            "diagrams": tab.evaluate(DIAGRAMS), "code": tab.evaluate(CODE_BLOCKS), "tables": tab.evaluate(TABLES),
            "overflows": tab.evaluate("document.documentElement.scrollWidth > innerWidth + 1"),
            "errors": tab.uncaught_errors(),
        }
    return seen


def surveyed(browser, base_url, site, viewport) -> dict[str, dict]:
    tab = Tab(browser)
    try:
        return survey(tab, base_url, site, viewport)
    finally:
        tab.close()


@pytest.fixture(scope="module")
def desktop(browser, base_url, site) -> dict[str, dict]:
    return surveyed(browser, base_url, site, DESKTOP)


@pytest.fixture(scope="module")
def phone(browser, base_url, site) -> dict[str, dict]:
    return surveyed(browser, base_url, site, PHONE)


REPORTED: list[str] = []  # the measurements of this run, in artifacts/site-measurements.txt


def report(capsys, title: str, lines: list[str]) -> None:
    """Print a measurement to the terminal, whatever pytest captures, and keep it in artifacts/."""
    SCREENSHOTS.mkdir(exist_ok=True)
    with open(SCREENSHOTS / "site-measurements.txt", "a" if REPORTED else "w", encoding="utf-8") as out:
        REPORTED.append(title)
        out.write("\n".join([f"## {title}", *lines, ""]) + "\n")
    with capsys.disabled():
        print("\n".join(["", f"site: {title}", *(f"  {line}" for line in lines)]))


@pytest.mark.browser
def test_every_diagram_is_drawn_legibly_at_1280_px(desktop, capsys):
    with_diagrams = {page: seen for page, seen in desktop.items() if seen["diagrams_in_html"]}
    assert with_diagrams, "no built page has a ```mermaid block (Day 43's notes should)"
    problems, scrolling, smallest = [], [], []
    for page, seen in sorted(with_diagrams.items()):
        diagrams = seen["diagrams"]
        if not seen["all_drawn"] or len(diagrams) != seen["diagrams_in_html"]:
            states = [d["state"] for d in diagrams]
            problems.append(f"{page}: {seen['diagrams_in_html']} ```mermaid blocks, drawn within {WAIT} s: {states}")
        for d in diagrams:
            where = f"{page} § {d['section']!r}"
            if d["state"] != "drawn":
                problems.append(f"{where}: the diagram is {d['state']!r} (a Mermaid syntax error shows in the console)")
            elif not d["enlarge"]:
                problems.append(f"{where}: the diagram has no enlarge button")
            elif d["shown"] and (d["smallest"] is None or d["smallest"] < MIN_LABEL_PX):
                problems.append(f"{where}: its smallest label, {d['text']!r}, is {d['smallest']} px; "
                                f"at least {MIN_LABEL_PX} px is legible (re-lay it out, split it, or let it scroll)")
            if d.get("shown"):
                smallest.append((d["smallest"] or 0, where))
                if d["scrolls"]:
                    scrolling.append(where)
    shown = len(smallest)
    report(capsys, "diagrams at 1280 px", [
        f"{shown} shown; smallest label {min(smallest)[0]} px ({min(smallest)[1]})",
        f"{len(scrolling)} wider than the column at a legible size, scrolling sideways (enlarge shows them whole)"
        + (":" if scrolling else ""),
        *(f"  {where}" for where in scrolling)])
    assert not problems, "diagrams that are not drawn legibly:\n" + "\n".join(problems)


@pytest.mark.browser
def test_every_diagram_is_legible_on_a_phone(phone, capsys):
    """On a 390 px phone a wide diagram keeps legible labels and scrolls sideways; enlarging shows it whole."""
    shown = [(d["smallest"] or 0, f"{page_name(page)} § {d['section']!r}")
             for page, seen in phone.items() for d in seen["diagrams"] if d.get("shown")]
    assert shown, "no diagram was shown on a 390 px phone"
    small = [f"{where}: {size} px" for size, where in shown if size < MIN_LABEL_PX]
    scrolling = sum(d.get("scrolls", False) for seen in phone.values() for d in seen["diagrams"])
    report(capsys, "diagrams at 390 px", [f"{len(shown)} shown; smallest label {min(shown)[0]} px; "
                                          f"{scrolling} scroll sideways within their box"])
    assert not small, f"diagram labels under {MIN_LABEL_PX} px on a phone:\n" + "\n".join(small)


@pytest.mark.browser
def test_mermaid_is_loaded_only_by_pages_with_a_diagram(desktop, capsys):
    loading = sorted(page_name(p) for p, seen in desktop.items() if seen["mermaid"])
    needless = [page_name(p) for p, seen in desktop.items() if seen["mermaid"] and not seen["diagrams_in_html"]]
    missing = [page_name(p) for p, seen in desktop.items() if seen["diagrams_in_html"] and not seen["mermaid"]]
    report(capsys, "pages loading mermaid", [f"{len(loading)} of {len(desktop)}: {', '.join(loading)}"])
    assert not needless, (f"pages without a diagram load Mermaid (3.6 MB), slowing them for nothing: {needless}; "
                          "diagrams.js should load it only when the page has a <div class=\"diagram\">")
    assert not missing, f"pages with diagrams never loaded {MERMAID}: {missing}"


@pytest.mark.browser
def test_no_request_leaves_the_site(desktop, phone):
    offsite_requests = {page_name(p): seen["offsite"] for survey_ in (desktop, phone)
                        for p, seen in survey_.items() if seen["offsite"]}
    assert not offsite_requests, f"pages requested files from other hosts (readers may be offline): {offsite_requests}"
    errors = {page_name(p): seen["errors"] for p, seen in desktop.items() if seen["errors"]}
    assert not errors, f"JavaScript errors: {errors}"


@pytest.mark.browser
def test_code_fits_the_column_at_1280_px(desktop, capsys):
    blocks = [(page, block) for page, seen in desktop.items() for block in seen["code"]]
    scrolling = [f"{page_name(page)}: a {block['longest']}-character line: {block['line']!r}"
                 for page, block in blocks if block["scrolls"]]
    covered = [page_name(page) for page, block in blocks if block["covered"]]
    report(capsys, "code blocks at 1280 px", [f"{len(scrolling)} of {len(blocks)} scroll sideways", *scrolling])
    assert blocks, "no page shows a code block"
    assert not covered, f"the copy button covers the end of code lines on {sorted(set(covered))}"
    assert not scrolling, "code blocks that scroll sideways at 1280 px:\n" + "\n".join(scrolling)


@pytest.mark.browser
def test_tables_fit_a_phone(phone, capsys):
    tables = [(page, table) for page, seen in phone.items() for table in seen["tables"]]
    wide = [f"{page_name(page)}: {table['head']!r}" for page, table in tables if table["wide"]]
    report(capsys, "tables at 390 px", [f"{len(wide)} of {len(tables)} wider than the screen", *wide])
    assert phone[""]["tables"], "the home page shows no table at 390 px (the week table?)"
    home = [table["head"] for table in phone[""]["tables"] if table["wide"]]
    assert not home, f"on a 390 px phone the home page's tables {home} scroll sideways, their links off-screen"
    overflowing = [page_name(page) for page, seen in phone.items() if seen["overflows"]]
    assert not overflowing, f"pages wider than a 390 px phone (the whole page scrolls sideways): {overflowing}"
    assert not wide, "tables wider than a 390 px phone:\n" + "\n".join(wide)


@pytest.mark.browser
def test_the_home_pages_week_links_are_on_a_phones_screen(tab, base_url):
    tab.send("Emulation.setDeviceMetricsOverride", **PHONE)
    tab.open(base_url)
    links = tab.evaluate("""[...document.querySelectorAll('article table a')].map(a => {
      const r = a.getBoundingClientRect(); return {text: a.textContent.trim(), left: r.left, right: r.right}; })""")
    assert links, "the home page's tables hold no links (the week table's Read/Practise links?)"
    off = [link["text"] for link in links if link["left"] < 0 or link["right"] > PHONE["width"] + 1]
    assert not off, f"on a 390 px phone these links of the home page's tables are off-screen: {off}"
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "site-home-phone.png").write_bytes(screenshot(tab, full_page=True))


def screenshot(tab: Tab, full_page: bool = False) -> bytes:
    return base64.b64decode(tab.send("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)["data"])


def largest_page(site: Path) -> str:
    return max(built_pages(site, "**/index.html"), key=lambda page: (site / page / "index.html").stat().st_size)


@pytest.mark.browser
def test_time_to_ready_of_the_largest_page_is_printed(browser, base_url, site, capsys):
    """Measured, not asserted: the machine decides the number. Cold cache, three loads, the median."""
    page = largest_page(site)
    timings = []
    for _ in range(3):
        tab = Tab(browser)
        try:
            tab.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
            tab.send("Network.setCacheDisabled", cacheDisabled=True)
            tab.open(base_url + page)
            tab.wait_for(ALL_DRAWN)
            drawn = tab.evaluate("performance.now()")
            navigation = tab.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
            timings.append((navigation["domContentLoadedEventEnd"], navigation["loadEventEnd"], drawn))
        finally:
            tab.close()
    ready, loaded, drawn = (sorted(column)[1] for column in zip(*timings, strict=True))
    report(capsys, f"the largest page, {page} ({(site / page / 'index.html').stat().st_size // 1024} KiB)", [
        f"DOMContentLoaded {ready:.0f} ms, load {loaded:.0f} ms, every diagram drawn by {drawn:.0f} ms "
        f"(median of 3 cold loads; the goal is DOMContentLoaded within 1500 ms)"])
    assert 0 < ready <= loaded


def click(tab: Tab, selector: str) -> None:
    """A real mouse click in the middle of the element, as a reader makes it."""
    box = tab.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
      if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
      return {{x: r.left + r.width / 2, y: r.top + r.height / 2}}; }})()""")
    assert box, f"nothing on {tab.evaluate('location.href')} matches {selector}"
    for kind in ("mousePressed", "mouseReleased"):
        tab.send("Input.dispatchMouseEvent", type=kind, button="left", clickCount=1, **box)


VIEWER = """(() => { const d = document.querySelector('dialog.diagram-viewer');
  const canvas = d?.querySelector('.diagram-viewer__canvas'), svg = canvas?.querySelector('svg');
  if (!d || !d.open || !svg) return {open: !!d?.open};
  const r = svg.getBoundingClientRect(), m = new DOMMatrix(getComputedStyle(canvas).transform);
  return {open: true, width: r.width, height: r.height, left: r.left, top: r.top,
          scale: m.a, x: m.e, y: m.f, screen: [innerWidth, innerHeight]}; })()"""


@pytest.mark.browser
def test_a_diagram_enlarges_to_the_full_screen_with_pan_and_zoom(tab, base_url, site):
    guide = next(iter(built_pages(site, "Day-48-*/PROJECT-GUIDE/index.html")), None)
    assert guide, "Day 48's project guide was not built"
    tab.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    tab.open(base_url + guide + "#31-choreography-step-by-step")
    assert tab.wait_for(ALL_DRAWN), f"the diagrams of {guide} were not drawn within {WAIT} s"
    first = '[id="31-choreography-step-by-step"] ~ div.diagram'
    inline = tab.evaluate(f"document.querySelector('{first} svg').getBoundingClientRect().width")
    click(tab, f"{first} button.diagram__enlarge")
    state = tab.wait_for(f"(() => {{ const v = {VIEWER}; return v.open && v.width ? v : null; }})()")
    assert state, "clicking a diagram's enlarge button opened no full-screen viewer with the diagram in it"
    assert state["width"] > inline or state["height"] >= 0.8 * DESKTOP["height"], (
        f"the enlarged diagram ({state['width']:.0f} px wide) is no larger than inline ({inline:.0f} px)")
    (SCREENSHOTS / "site-diagram-enlarged.png").write_bytes(screenshot(tab))

    # Zoom in with the wheel, around the pointer.
    middle = {"x": DESKTOP["width"] / 2, "y": DESKTOP["height"] / 2}
    tab.send("Input.dispatchMouseEvent", type="mouseWheel", deltaX=0, deltaY=-400, **middle)
    zoomed = tab.wait_for(f"(() => {{ const v = {VIEWER}; return v.scale > {state['scale']} * 1.2 ? v : null; }})()")
    assert zoomed, f"the mouse wheel did not zoom the enlarged diagram in: {tab.evaluate(VIEWER)}"
    # Pan by dragging.
    tab.send("Input.dispatchMouseEvent", type="mousePressed", button="left", clickCount=1, **middle)
    tab.send("Input.dispatchMouseEvent", type="mouseMoved", button="left", x=middle["x"] - 200, y=middle["y"] - 150)
    tab.send("Input.dispatchMouseEvent", type="mouseReleased", button="left", clickCount=1,
             x=middle["x"] - 200, y=middle["y"] - 150)
    panned = tab.evaluate(VIEWER)
    assert (round(panned["x"] - zoomed["x"]), round(panned["y"] - zoomed["y"])) == (-200, -150), (
        f"dragging 200 px left and 150 px up moved the diagram from {zoomed} to {panned}")
    # The keyboard: + zooms in, Escape closes.
    scale = panned["scale"]
    for key in ("+", "Escape"):
        if key == "Escape":
            tab.send("Input.dispatchKeyEvent", type="rawKeyDown", key=key, code=key, windowsVirtualKeyCode=27)
            tab.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=27)
        else:
            tab.send("Input.dispatchKeyEvent", type="keyDown", key=key, text=key)
            tab.send("Input.dispatchKeyEvent", type="keyUp", key=key)
            assert tab.wait_for(f"{VIEWER}.scale > {scale}"), "the + key did not zoom the enlarged diagram in"
    assert tab.wait_for(f"!{VIEWER}.open"), "Escape did not close the enlarged diagram"
    assert not tab.uncaught_errors(), f"JavaScript errors while enlarging: {tab.uncaught_errors()}"


@pytest.mark.browser
def test_a_diagram_enlarges_on_a_phone_and_pinches_to_zoom(tab, base_url, site):
    guide = next(iter(built_pages(site, "Day-48-*/PROJECT-GUIDE/index.html")))
    tab.send("Emulation.setDeviceMetricsOverride", **PHONE)
    tab.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=2)
    tab.open(base_url + guide)
    assert tab.wait_for(ALL_DRAWN), f"the diagrams of {guide} were not drawn within {WAIT} s"
    button = tab.evaluate("""(() => { const b = document.querySelector('article button.diagram__enlarge');
      b.scrollIntoView({block: 'center'}); const r = b.getBoundingClientRect();
      return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()""")
    tap = [{"x": button["x"], "y": button["y"], "id": 0}]
    tab.send("Input.dispatchTouchEvent", type="touchStart", touchPoints=tap)
    tab.send("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])
    state = tab.wait_for(f"(() => {{ const v = {VIEWER}; return v.open && v.width ? v : null; }})()")
    assert state, "tapping a diagram's enlarge button on a phone opened no viewer"
    x, y = PHONE["width"] / 2, PHONE["height"] / 2
    tab.send("Input.dispatchTouchEvent", type="touchStart",
             touchPoints=[{"x": x - 30, "y": y, "id": 1}, {"x": x + 30, "y": y, "id": 2}])
    for step in range(1, 6):
        tab.send("Input.dispatchTouchEvent", type="touchMove",
                 touchPoints=[{"x": x - 30 - 20 * step, "y": y, "id": 1}, {"x": x + 30 + 20 * step, "y": y, "id": 2}])
    tab.send("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])
    pinched = tab.evaluate(VIEWER)
    assert pinched["scale"] > 1.5 * state["scale"], (
        f"spreading two fingers from 60 to 260 px apart should zoom in about 4x: scale {state['scale']} -> {pinched['scale']}")
    tab.send("Emulation.setTouchEmulationEnabled", enabled=False)


@pytest.mark.browser
def test_instant_navigation_draws_the_next_pages_diagrams(tab, base_url, site, desktop):
    """A link followed inside the site swaps the page without reloading it; the new page's diagrams are drawn."""
    target = next(p for p, seen in sorted(desktop.items()) if seen["diagrams_in_html"])
    start = next(p for p, seen in sorted(desktop.items()) if not seen["diagrams_in_html"])
    tab.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    tab.open(base_url + start)
    tab.evaluate("window.__sameDocument = true")
    link = tab.evaluate(f"""(() => {{ const a = [...document.querySelectorAll('a[href]')]
      .find(a => a.href === new URL({json.dumps(target)}, {json.dumps(base_url)}).href && a.getClientRects().length);
      if (!a) return null; a.id = 'instant-target'; return a.href; }})()""")
    if not link:  # no visible link: put one in the page, as a link in the text would be
        tab.evaluate(f"""(() => {{ const a = document.createElement('a'); a.id = 'instant-target';
          a.href = {json.dumps(base_url + target)}; a.textContent = 'go';
          document.querySelector('article').prepend(a); }})()""")
    click(tab, "#instant-target")
    assert tab.wait_for(f"location.href.startsWith({json.dumps(base_url + target)})"), f"the link to {target} was not followed"
    assert tab.evaluate("window.__sameDocument === true"), (
        "following a link reloaded the whole page: instant navigation (navigation.instant) is off")
    assert tab.wait_for(ALL_DRAWN + " && document.querySelectorAll('article div.diagram').length > 0"), (
        f"after an instant navigation to {target} its diagrams were not drawn (diagrams.js must run on document$)")
    assert not tab.uncaught_errors(), f"JavaScript errors: {tab.uncaught_errors()}"


@pytest.mark.browser
def test_screenshot_of_a_chapter(tab, base_url, site):
    tab.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    tab.open(base_url + "Day-45-Event-Driven/notes/")
    tab.wait_for(ALL_DRAWN)
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "site-chapter.png").write_bytes(screenshot(tab))


def test_search_index_holds_no_diagram_source(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    sources = [doc["location"] for doc in index["docs"]
               if re.search(r"\b(sequenceDiagram|flowchart (LR|TB|TD|RL)|stateDiagram-v2)\b", doc["text"])]
    assert not sources, f"search results would show raw diagram source: {sources[:5]}"


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


def test_linked_source_files_open_as_pages_of_the_site(site):
    """A link to a .py/.yml/.toml file opens the file's highlighted page, which links to the raw file."""
    raw_links, source_pages = [], []
    for page in sorted(site.rglob("index.html")):
        url = page.parent.relative_to(site).as_posix() + "/"
        html = page.read_text(encoding="utf-8")
        for href in set(re.findall(r'<a [^>]*?href="([^"#?]+)', html)):
            if urlsplit(href).scheme or not href.endswith(SOURCE_SUFFIXES):
                continue
            target = (page.parent / href).resolve()
            if url.startswith(SOURCE_PAGES):
                source_pages.append((url, target))
            elif target.is_file():
                raw_links.append(f"{url} -> {href}")
    assert not raw_links, (
        f"{len(raw_links)} links open a source file as bare text instead of its page under {SOURCE_PAGES} "
        "(hooks/course_site.py, source_page()):\n" + "\n".join(raw_links[:20]))
    pages = built_pages(site, SOURCE_PAGES + "**/index.html")
    assert pages, f"no source file has a page under {SOURCE_PAGES}, though the notes link to many"
    broken = [url for url, target in source_pages if not target.is_file()]
    assert not broken, f"source pages whose link to the raw file leads nowhere: {broken[:10]}"
    without_raw = sorted(set(pages) - {url for url, _ in source_pages})
    assert not without_raw, f"source pages with no link to their raw file: {without_raw[:10]}"
    plain = [url for url in pages if 'class="language-' not in (site / url / "index.html").read_text(encoding="utf-8")]
    assert not plain, f"source pages whose code is not highlighted: {plain[:10]}"


def test_every_code_block_names_its_language(site):
    """Material shows and highlights a block by its language; a block without one is plain grey text."""
    unnamed = {}
    for page in built_pages(site, "**/index.html"):
        count = (site / page / "index.html").read_text(encoding="utf-8").count('<div class="highlight">')
        if count:
            unnamed[page] = count
    assert not unnamed, (f"code blocks without a language (```text, ```bash...), by page: {unnamed}; "
                         "every fence opens with its language")


def test_every_page_is_in_the_navigation(site):
    """No page is reached only through a link: each has a place in the tabs and sidebar (source pages aside)."""
    home = (site / "index.html").read_text(encoding="utf-8")
    in_nav = {urlsplit(href).path.removeprefix("./") for href in re.findall(r'class="md-nav__link[^"]*"[^>]*href="([^"]+)"', home)}
    in_nav |= {urlsplit(href).path.removeprefix("./") for href in re.findall(r'href="([^"]+)"[^>]*class="md-nav__link', home)}
    pages = [page for page in built_pages(site, "**/index.html")
             if not page.startswith(SOURCE_PAGES) and page not in ("./", "404/")]
    orphans = [page for page in pages if page not in in_nav]
    assert not orphans, f"pages missing from the navigation, reached only by links: {orphans}"


def test_glossary_terms_explain_themselves_on_hover(site):
    """Each day's glossary reaches its pages: a term used in the text carries its meaning as a tooltip."""
    import html as html_module

    for notes in sorted(ROOT.glob("Day-*/notes.md")):
        glossary = re.search(r"^## [^\n]*Glossary[^\n]*$(.*?)(?=^## |\Z)", notes.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
        if not glossary:
            continue
        meanings = {" ".join(re.sub(r"`|\*|\[([^\]]*)\]\([^)]*\)", r"\1", row).replace('"', "'").split())
                    for row in re.findall(r"^\|[^|]+\|\s*(.+?)\s*\|\s*$", glossary[1], re.MULTILINE)}
        page = site / notes.parent.name / "notes" / "index.html"
        titles = [" ".join(html_module.unescape(t).split())
                  for t in re.findall(r'<abbr title="([^"]*)">', page.read_text(encoding="utf-8"))]
        assert titles, f"{notes.parent.name}/notes.md has a glossary, but none of its terms shows its meaning on hover"
        foreign = sorted(set(titles) - meanings)
        assert not foreign, f"{notes.parent.name}: tooltips that are not the day's glossary meanings: {foreign[:3]}"


def test_every_page_says_when_it_was_last_updated(site):
    """The date of the page's last commit (mkdocs-git-revision-date-localized-plugin), or of the build when uncommitted."""
    pages = [page for page in built_pages(site, "**/index.html") if page not in ("./404/", "404/")]
    undated = [page for page in pages if "git-revision-date-localized-plugin-date" not in
               (site / page / "index.html").read_text(encoding="utf-8")]
    assert not undated, f"pages with no last-updated date: {undated[:10]}"
