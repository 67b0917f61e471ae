/* Tables on a narrow screen: a table wider than the column becomes a stack of cards (course.css,
   table.stacked), each cell under its column's name, instead of scrolling sideways with its last
   columns (often the links) off-screen. Checked again when the window changes width, and on every
   page Material's instant navigation shows. */
(() => {
  "use strict";

  const NARROW = "(max-width: 44.9375em)"; // Material's own phone breakpoint

  function label(table) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, i) => {
        if (names[i] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", names[i]);
      });
    }
  }

  function stack() {
    const narrow = window.matchMedia(NARROW).matches;
    const tables = [...document.querySelectorAll("article table:not(.highlighttable)")].filter((t) => t.tHead);
    tables.forEach((table) => table.classList.remove("stacked"));
    if (!narrow) return;
    // Measure all first, then change: one layout instead of one per table.
    const wide = tables.filter((table) => {
      // Material's wrapper is the box that would scroll; a bare table, its parent.
      const wrapper = table.closest(".md-typeset__scrollwrap");
      return wrapper ? wrapper.scrollWidth > wrapper.clientWidth + 1 : table.scrollWidth > table.parentElement.clientWidth + 1;
    });
    wide.forEach((table) => {
      label(table);
      table.classList.add("stacked");
    });
  }

  let pending = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(stack);
  });
  if (window.document$) window.document$.subscribe(stack);
  else document.addEventListener("DOMContentLoaded", stack);
})();
