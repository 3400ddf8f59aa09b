// Small behaviour the portal's pages share. Loaded with the page's CSP nonce.
(function () {
  "use strict";
  // A form that was not saved: take keyboard and screen-reader users to the list of
  // problems at its top (each links to its field).
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
  }
})();

// The register's detail of a plan (Making Data Count icons per indicator): opens on
// hover and on its button (keyboard, touch), loads once, and closes with Escape or when
// the pointer leaves, unless the button pinned it open.
(function () {
  "use strict";
  document.querySelectorAll("[data-peek]").forEach(function (peek) {
    var button = peek.querySelector("button");
    var panel = peek.querySelector("[data-peek-panel]");
    var loaded = false;
    var pinned = false;
    function load() {
      if (loaded) { return; }
      loaded = true;
      panel.textContent = "Loading…";
      fetch(button.getAttribute("data-peek-url"), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) { panel.innerHTML = html; place(); })
        .catch(function () { loaded = false; panel.textContent = "Could not load the detail."; });
    }
    // Fixed to the viewport beside its button: a table that scrolls sideways would
    // otherwise clip it.
    function place() {
      var rect = button.getBoundingClientRect();
      var width = panel.offsetWidth;
      panel.style.top = (rect.bottom + 4) + "px";
      panel.style.left = Math.max(8, Math.min(rect.right - width, window.innerWidth - width - 8)) + "px";
    }
    function show() {
      load();
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
      place();
    }
    window.addEventListener("scroll", function () { if (!panel.hidden) { place(); } }, { passive: true });
    window.addEventListener("resize", function () { if (!panel.hidden) { place(); } });
    function hide() { panel.hidden = true; pinned = false; button.setAttribute("aria-expanded", "false"); }
    peek.addEventListener("mouseenter", show);
    peek.addEventListener("mouseleave", function () { if (!pinned) { hide(); } });
    button.addEventListener("click", function () {
      if (panel.hidden || !pinned) { pinned = true; show(); } else { hide(); }
    });
    // Escape closes it wherever focus is (it may have opened under the pointer).
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || panel.hidden) { return; }
      var inside = peek.contains(document.activeElement);
      hide();
      if (inside) { button.focus(); }
    });
  });
})();

// Fields that only one choice needs (data-shown-for="name=value": the step-down fields of
// the decision form) are hidden while another is chosen, so a chair closing a plan is not
// asked about monitoring. Without JavaScript they stay shown, under their legend.
(function () {
  "use strict";
  document.querySelectorAll("[data-shown-for]").forEach(function (part) {
    var rule = part.getAttribute("data-shown-for").split("=");
    var form = part.closest("form");
    if (!form) { return; }
    var inputs = form.querySelectorAll('input[name="' + rule[0] + '"]');
    function update() {
      var chosen = form.querySelector('input[name="' + rule[0] + '"]:checked');
      part.hidden = !chosen || chosen.value !== rule[1];
    }
    inputs.forEach(function (input) { input.addEventListener("change", update); });
    update();
  });
})();
