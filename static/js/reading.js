// Views that follow the pointer (the run page). Progressive enhancement: without this file the
// figures are still drawn, every cell has its value in a tooltip, and the "Show" button works.
//
// - Head view: hovering or focusing a token keeps only its lines (the lines from a token on
//   the left, to a token on the right); the other lines fade.
// - Heatmap: hovering or focusing a row label, or hovering a cell, keeps only that row; the
//   readout under the figure says the value.
// - Escape, or leaving the figure, brings every line and row back; Enter or Space on a focused
//   token or row label toggles its isolation.
// The isolation is two CSS classes ("isolating" on the <svg>, "on" on what stays), styled in
// site.css; the document-level listeners keep working after htmx swaps the view.
(function () {
  "use strict";

  function clear(svg) {
    svg.classList.remove("isolating");
    svg.querySelectorAll(".on").forEach(function (node) { node.classList.remove("on"); });
  }

  function clearAll() {
    document.querySelectorAll("svg.isolating").forEach(clear);
  }

  function readout(svg) {
    var figure = svg.closest(".figure");
    if (!figure) { return null; }
    var output = figure.querySelector("output.readout");
    if (!output) {
      output = document.createElement("output");
      output.className = "readout";
      output.setAttribute("aria-live", "polite");
      figure.appendChild(output);
    }
    return output;
  }

  function isolateToken(svg, token) {
    var side = token.getAttribute("data-side");
    var index = token.getAttribute("data-index");
    clear(svg);
    svg.classList.add("isolating");
    token.classList.add("on");
    svg.querySelectorAll("line[data-" + side + '="' + index + '"]').forEach(function (line) {
      line.classList.add("on");
      var other = side === "from" ? "to" : "from";
      var end = svg.querySelector('text.token[data-side="' + other + '"][data-index="' +
        line.getAttribute("data-" + other) + '"]');
      if (end) { end.classList.add("on"); }
    });
  }

  function isolateRow(svg, row, cell) {
    clear(svg);
    svg.classList.add("isolating");
    svg.querySelectorAll('[data-row="' + row + '"]').forEach(function (node) {
      node.classList.add("on");
    });
    var output = readout(svg);
    if (!output) { return; }
    // A cell says its own value; a row label, the row's strongest cell.
    var shown = cell;
    if (!shown) {
      svg.querySelectorAll('rect.cell[data-row="' + row + '"][data-value]').forEach(function (node) {
        var value = Math.abs(+node.getAttribute("data-value"));
        if (!shown || value > Math.abs(+shown.getAttribute("data-value"))) { shown = node; }
      });
    }
    var title = shown && shown.querySelector("title");
    output.textContent = title ? title.textContent : "";
  }

  function follow(event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var token = target.closest("svg.head-view text.token");
    if (token) { isolateToken(token.ownerSVGElement, token); return; }
    var label = target.closest("svg.heatmap .row-label, svg.heatmap rect.cell");
    if (label) {
      var svg = label.ownerSVGElement;
      isolateRow(svg, label.getAttribute("data-row"), label.matches("rect.cell") ? label : null);
    }
  }

  document.addEventListener("mouseover", follow);
  document.addEventListener("focusin", follow);
  document.addEventListener("mouseout", function (event) {
    var svg = event.target instanceof Element && event.target.closest("svg.isolating");
    if (!svg) { return; }
    var next = event.relatedTarget;
    if (next instanceof Element && svg.contains(next)) { return; }
    if (svg.contains(document.activeElement)) { return; } // the keyboard's choice stays
    clear(svg);
  });
  document.addEventListener("focusout", function (event) {
    var svg = event.target instanceof Element && event.target.closest("svg.isolating");
    var next = event.relatedTarget;
    if (svg && !(next instanceof Element && svg.contains(next))) { clear(svg); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.querySelector("svg.isolating")) {
      clearAll();
      return;
    }
    // Enter or Space on a focused token or row label (role="button") toggles its isolation.
    if ((event.key === "Enter" || event.key === " ") && event.target instanceof Element) {
      var target = event.target.closest("svg.head-view text.token, svg.heatmap .row-label");
      if (!target) { return; }
      event.preventDefault();
      var svg = target.ownerSVGElement;
      if (svg.classList.contains("isolating") && target.classList.contains("on")) {
        clear(svg);
      } else {
        follow({ target: target });
      }
    }
  });
})();
