// FIDO console: the one script. No framework, no build step.
// 1. Forms marked data-confirm ask before they change anything.
// 2. Pages with data-live-url reload their data-live regions when the
//    server says (server-sent events) that incidents or actions changed.
(function () {
  "use strict";

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute("data-confirm");
    if (!question) return;
    if (!window.confirm(question)) {
      e.preventDefault();
      return;
    }
    var input = form.querySelector("input[name=confirmed]");
    if (input) input.value = "yes";
  });

  var url = document.body.getAttribute("data-live-url");
  if (!url || !window.EventSource || !window.fetch || !window.DOMParser) return;

  var busy = false, again = false;
  var status = document.getElementById("live-status");

  function refresh() {
    if (busy) { again = true; return; }
    if (document.hidden) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var fresh = old.id && doc.getElementById(old.id);
          if (fresh && fresh.innerHTML !== old.innerHTML) {
            if (old.contains(document.activeElement)) return; // do not pull the focus away
            old.replaceWith(document.importNode(fresh, true));
          }
        });
        if (status) status.textContent = "Live: updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {
        if (status) status.textContent = "Live: update failed; reload the page";
      })
      .finally(function () {
        busy = false;
        if (again) { again = false; setTimeout(refresh, 250); }
      });
  }

  var source = new EventSource(url);
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () { if (status) status.textContent = "Live"; });
  source.addEventListener("error", function () { if (status) status.textContent = "Live: reconnecting…"; });
  document.addEventListener("visibilitychange", function () { if (!document.hidden && again) { again = false; refresh(); } });
})();
