/* The course's diagrams: ```mermaid blocks, drawn by the site's own copy of Mermaid.

   mkdocs.yml turns each ```mermaid block into <div class="diagram">source</div>, which Material
   leaves alone. This script loads Mermaid only on a page that has such a block (3.6 MB that the
   other pages never fetch), draws the diagrams nearest the reader first, never shrinks one below
   a legible label size (a wider one scrolls sideways instead), and gives each an "enlarge" button
   that opens it full screen, with pan and zoom by mouse, touch and keyboard. It runs on every page
   Material's instant navigation shows (document$), not only the first one. */
(() => {
  "use strict";

  const MIN_LABEL_PX = 10; // the smallest label size a diagram is shown at inline, in CSS pixels
  const MERMAID_URL = new URL("vendor/mermaid.min.js", document.currentScript.src).href;
  const LABELS = "text, foreignObject span, foreignObject div, foreignObject p";

  let mermaidReady = null; // a promise of window.mermaid, once asked for
  let queue = Promise.resolve(); // Mermaid draws one diagram at a time
  let counter = 0;

  function loadMermaid() {
    if (!mermaidReady) {
      mermaidReady = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = MERMAID_URL;
        script.async = true;
        script.onload = () => resolve(window.mermaid);
        script.onerror = () => reject(new Error(`could not load ${MERMAID_URL}`));
        document.head.appendChild(script);
      });
    }
    return mermaidReady;
  }

  function scheme() {
    return document.body.getAttribute("data-md-color-scheme") === "slate" ? "dark" : "default";
  }

  function configure(mermaid) {
    mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      theme: scheme(),
      fontFamily: getComputedStyle(document.body).fontFamily,
      flowchart: { useMaxWidth: false },
      sequence: { useMaxWidth: false },
      state: { useMaxWidth: false },
      gantt: { useMaxWidth: false },
    });
  }

  /* The smallest label font size inside an <svg>, in the diagram's own units. */
  function smallestLabel(svg) {
    let smallest = Infinity;
    for (const label of svg.querySelectorAll(LABELS)) {
      if (label.textContent.trim()) {
        smallest = Math.min(smallest, parseFloat(getComputedStyle(label).fontSize) || Infinity);
      }
    }
    return Number.isFinite(smallest) ? smallest : 16;
  }

  /* As wide as the column allows, never wider than drawn, never so narrow that a label drops under MIN_LABEL_PX. */
  function size(svg, box) {
    const width = svg.viewBox.baseVal.width || box.width;
    svg.removeAttribute("height");
    svg.setAttribute("width", "100%");
    svg.style.maxWidth = `${Math.ceil(width)}px`;
    svg.style.minWidth = `${Math.min(Math.ceil(width), Math.ceil((width * MIN_LABEL_PX) / smallestLabel(svg)))}px`;
    svg.style.height = "auto";
  }

  function draw(element) {
    if (element.dataset.state) return queue;
    element.dataset.state = "queued";
    const source = element.dataset.source ?? element.textContent;
    element.dataset.source = source;
    queue = queue.then(async () => {
      try {
        const mermaid = await loadMermaid();
        if (mermaid.__courseScheme !== scheme()) {
          configure(mermaid);
          mermaid.__courseScheme = scheme();
        }
        const { svg } = await mermaid.render(`diagram-${++counter}`, source);
        element.innerHTML =
          `<div class="diagram__scroll">${svg}</div>` +
          '<button class="diagram__enlarge md-icon" type="button" title="Enlarge (pan and zoom)" aria-label="Enlarge the diagram">' +
          '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M10 21v-2H6.41l4.5-4.5-1.41-1.41-4.5 4.5V14H3v7h7m4.5-10.09 4.5-4.5V10h2V3h-7v2h3.59l-4.5 4.5 1.41 1.41Z"/></svg></button>';
        const drawn = element.querySelector(".diagram__scroll > svg");
        size(drawn, drawn.getBBox());
        element.querySelector(".diagram__enlarge").addEventListener("click", () => enlarge(element));
        drawn.addEventListener("dblclick", () => enlarge(element));
        element.dataset.state = "drawn";
      } catch (error) {
        element.dataset.state = "error";
        element.textContent = source;
        console.error(`a diagram could not be drawn: ${error && error.message}`);
      }
    });
    return queue;
  }

  /* Diagrams near the screen first, then the rest of the page's when the browser is idle. */
  function drawPage() {
    const diagrams = [...document.querySelectorAll("div.diagram:not([data-state])")];
    if (!diagrams.length) return;
    const near = new IntersectionObserver(
      (entries) => entries.filter((e) => e.isIntersecting).forEach((e) => draw(e.target)),
      { rootMargin: "600px 0px" },
    );
    diagrams.forEach((d) => near.observe(d));
    const rest = () => {
      const next = diagrams.find((d) => !d.dataset.state && d.isConnected); // not a page navigated away from
      if (next) draw(next).then(() => setTimeout(rest, 0));
      else near.disconnect();
    };
    loadMermaid().then(() => (window.requestIdleCallback || setTimeout)(rest), () => {});
  }

  /* ---- the full-screen viewer: one <dialog>, the diagram's <svg> copied into a pannable, zoomable canvas */

  let viewer = null;
  const view = { x: 0, y: 0, scale: 1, width: 0, height: 0 };

  function makeViewer() {
    const dialog = document.createElement("dialog");
    dialog.className = "diagram-viewer";
    dialog.setAttribute("aria-label", "Diagram, enlarged");
    dialog.innerHTML =
      '<div class="diagram-viewer__tools">' +
      '<button type="button" data-zoom="in" aria-label="Zoom in" title="Zoom in (+)">+</button>' +
      '<button type="button" data-zoom="out" aria-label="Zoom out" title="Zoom out (-)">\u2212</button>' +
      '<button type="button" data-zoom="fit" aria-label="Fit to screen" title="Fit to screen (0)">Fit</button>' +
      '<button type="button" data-close aria-label="Close" title="Close (Esc)">\u00d7</button></div>' +
      '<div class="diagram-viewer__stage"><div class="diagram-viewer__canvas"></div></div>';
    const stage = dialog.querySelector(".diagram-viewer__stage");
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.querySelectorAll("[data-zoom]").forEach((button) =>
      button.addEventListener("click", () => zoomKey(button.dataset.zoom)),
    );
    dialog.addEventListener("keydown", (event) => {
      const key = { "+": "in", "=": "in", "-": "out", _: "out", 0: "fit" }[event.key];
      if (key) {
        event.preventDefault();
        zoomKey(key);
      }
    });
    dialog.addEventListener("close", () => {
      dialog.querySelector(".diagram-viewer__canvas").replaceChildren();
      document.documentElement.classList.remove("diagram-viewer-open");
    });
    stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      const point = stagePoint(event);
      zoomAt(view.scale * Math.exp(-event.deltaY * 0.0015), point.x, point.y);
    }, { passive: false });

    // Pan with one pointer (mouse or finger), pinch-zoom with two.
    const pointers = new Map();
    let last = null;
    const gesture = () => {
      const [a, b] = [...pointers.values()];
      return b ? { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, distance: Math.hypot(a.x - b.x, a.y - b.y) }
        : { x: a.x, y: a.y, distance: 0 };
    };
    stage.addEventListener("pointerdown", (event) => {
      stage.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, stagePoint(event));
      last = gesture();
    });
    stage.addEventListener("pointermove", (event) => {
      if (!pointers.has(event.pointerId)) return;
      pointers.set(event.pointerId, stagePoint(event));
      const now = gesture();
      view.x += now.x - last.x;
      view.y += now.y - last.y;
      if (now.distance && last.distance) zoomAt(view.scale * (now.distance / last.distance), now.x, now.y);
      else apply();
      last = now;
    });
    const lift = (event) => {
      pointers.delete(event.pointerId);
      last = pointers.size ? gesture() : null;
    };
    stage.addEventListener("pointerup", lift);
    stage.addEventListener("pointercancel", lift);
    document.body.appendChild(dialog);
    return dialog;
  }

  function stagePoint(event) {
    const box = viewer.querySelector(".diagram-viewer__stage").getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  function apply() {
    const canvas = viewer.querySelector(".diagram-viewer__canvas");
    canvas.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    canvas.dataset.scale = view.scale.toFixed(4);
  }

  function zoomAt(scale, x, y) {
    const next = Math.min(Math.max(scale, view.fit / 2), 8);
    view.x = x - ((x - view.x) * next) / view.scale;
    view.y = y - ((y - view.y) * next) / view.scale;
    view.scale = next;
    apply();
  }

  function zoomKey(what) {
    const stage = viewer.querySelector(".diagram-viewer__stage");
    if (what === "fit") return fit(false);
    zoomAt(view.scale * (what === "in" ? 1.25 : 0.8), stage.clientWidth / 2, stage.clientHeight / 2);
  }

  /* The whole diagram on screen; when that would make its labels too small to read (a phone), legible instead, from its top left. */
  function fit(legible) {
    const stage = viewer.querySelector(".diagram-viewer__stage");
    const top = viewer.querySelector(".diagram-viewer__tools").getBoundingClientRect().bottom + 8; // below the buttons
    const height = stage.clientHeight - top;
    view.fit = Math.min(stage.clientWidth / view.width, height / view.height);
    const readable = (MIN_LABEL_PX + 3) / view.label;
    view.scale = legible && view.fit < readable ? readable : view.fit;
    view.x = Math.max((stage.clientWidth - view.width * view.scale) / 2, 0);
    view.y = top + Math.max((height - view.height * view.scale) / 2, 0);
    apply();
  }

  function enlarge(element) {
    const original = element.querySelector(".diagram__scroll > svg");
    if (!original) return;
    viewer = viewer && document.body.contains(viewer) ? viewer : makeViewer();
    const copy = original.cloneNode(true);
    const box = original.viewBox.baseVal;
    copy.removeAttribute("style");
    copy.setAttribute("width", box.width);
    copy.setAttribute("height", box.height);
    Object.assign(view, { width: box.width, height: box.height, label: smallestLabel(original) });
    viewer.querySelector(".diagram-viewer__canvas").replaceChildren(copy);
    document.documentElement.classList.add("diagram-viewer-open");
    viewer.showModal();
    fit(true);
  }

  /* Redraw in the other palette when the reader switches between light and dark. */
  new MutationObserver(() => {
    if (!mermaidReady) return;
    document.querySelectorAll("div.diagram[data-state]").forEach((d) => {
      d.removeAttribute("data-state");
      d.textContent = d.dataset.source;
    });
    drawPage();
  }).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });

  if (window.document$) window.document$.subscribe(drawPage);
  else document.addEventListener("DOMContentLoaded", drawPage);
})();
