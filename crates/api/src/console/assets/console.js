// mPanel console: the little the pages need beyond HTML and htmx.
(function () {
  "use strict";
  // A form sends once: its submit button is disabled while it is sent.
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("button[type=submit]");
    if (button) {
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
  });
})();
