// The model view, enhanced (the page works without this file: the role filter is then a GET
// form, and each thumbnail a plain link).
// - Choosing a role shows only the heads with that role at once, and keeps it in the URL.
// - A thumbnail opens its head's heatmap in #view (htmx); the view controls follow, and focus
//   moves to the new view so keyboard and screen-reader users land where the content changed.
(function () {
  "use strict";
  var focusView = false;

  function applyFilter(view, role) {
    if (!view) { return; }
    var cells = view.querySelectorAll(".thumb-cell");
    var shown = 0;
    cells.forEach(function (cell) {
      var hide = role !== "" && cell.getAttribute("data-role") !== role;
      cell.hidden = hide;
      if (!hide) { shown += 1; }
    });
    view.setAttribute("data-role-filter-value", role);
    var count = view.querySelector("[data-role-count]");
    if (count) {
      count.textContent = count.getAttribute("data-template")
        .replace("{shown}", String(shown)).replace("{total}", String(cells.length));
    }
    var url = new URL(window.location.href);
    url.searchParams.set("kind", "model");
    if (role) { url.searchParams.set("role", role); } else { url.searchParams.delete("role"); }
    window.history.replaceState(window.history.state, "", url.toString());
  }

  document.addEventListener("change", function (event) {
    var select = event.target.closest ? event.target.closest("[data-role-select]") : null;
    if (select) { applyFilter(select.closest("[data-model-view]"), select.value); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest ? event.target.closest("[data-role-filter-form]") : null;
    if (!form) { return; }
    event.preventDefault();
    var select = form.querySelector("[data-role-select]");
    applyFilter(form.closest("[data-model-view]"), select ? select.value : "");
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.thumb[hx-get]") : null;
    if (!link) { return; }
    var controls = document.querySelector("form.view-controls");
    if (controls) {
      new URL(link.href).searchParams.forEach(function (value, name) {
        var field = controls.elements.namedItem(name);
        if (field && field.tagName === "SELECT") { field.value = value; }
      });
    }
    focusView = true;
  });

  document.addEventListener("htmx:afterSwap", function () {
    if (!focusView) { return; }
    focusView = false;
    var view = document.getElementById("view");
    if (!view) { return; }
    var target = view.querySelector("h2") || view;
    target.setAttribute("tabindex", "-1");
    target.focus();
  });
})();
