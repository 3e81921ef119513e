// Tarcza console: the only script. It polls the audit verification's progress; every page
// works without it (the progress page then reloads itself). No inline script anywhere (CSP).
"use strict";
(function () {
  var section = document.getElementById("verification");
  if (!section) { return; }
  var url = section.getAttribute("data-progress-url");
  var bar = document.getElementById("verify-progress");
  var text = document.getElementById("verify-progress-text");
  var template = text ? text.getAttribute("data-template") : "";
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (state) {
        if (bar) { bar.value = state.percent; bar.textContent = state.percent + "%"; }
        if (text && state.running) {
          text.textContent = template.replace("{done}", state.done).replace("{total}", state.total || "…");
        }
        if (state.running) { window.setTimeout(poll, 700); } else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 300);
})();
