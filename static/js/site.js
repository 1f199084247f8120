// Small, optional enhancements. Every page works without this file.
// While htmx is fetching, show a thin progress bar at the top of the page.
(function () {
  "use strict";
  var pending = 0;
  function update() {
    document.documentElement.classList.toggle("is-loading", pending > 0);
  }
  document.addEventListener("htmx:beforeRequest", function () { pending += 1; update(); });
  document.addEventListener("htmx:afterRequest", function () { pending = Math.max(0, pending - 1); update(); });
  // After a swap, move focus to a new question or feedback, so keyboard and screen-reader
  // users land where the content changed.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.closest("#quiz-box, #review-box")) { return; }
    var focusable = target.querySelector(".verdict, legend, h2");
    if (focusable) { focusable.setAttribute("tabindex", "-1"); focusable.focus({ preventScroll: false }); }
  });
})();
