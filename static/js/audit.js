// Conducting an audit: every answer is saved as it is given (htmx posts it). If the
// connection drops, the answer is kept on this device (localStorage) and sent again as
// soon as the browser is back online, or when the page is next opened.
(function () {
  "use strict";
  var form = document.querySelector("[data-autosave-form]");
  if (!form) { return; }
  var storeKey = "qip-" + form.getAttribute("data-autosave-key");
  var banner = document.querySelector("[data-offline-banner]");

  function pending() {
    try { return JSON.parse(window.localStorage.getItem(storeKey) || "{}"); } catch (e) { return {}; }
  }
  function keep(map) {
    try {
      if (Object.keys(map).length) { window.localStorage.setItem(storeKey, JSON.stringify(map)); }
      else { window.localStorage.removeItem(storeKey); }
    } catch (e) { /* storage full or refused: the in-page value is still there */ }
  }
  function fieldName(elt) {
    var params = (elt.getAttribute("hx-params") || "").split(",");
    return params[params.length - 1];
  }
  function valueOf(name) {
    var data = new FormData(form);
    return data.has(name) ? data.get(name) : "";
  }
  function status(elt, text, css) {
    var target = document.querySelector(elt.getAttribute("hx-target"));
    if (target) { target.textContent = text; target.className = "small save-status mt-1 " + css; }
  }
  function showBanner() { if (banner) { banner.classList.toggle("d-none", navigator.onLine); } }

  document.body.addEventListener("htmx:sendError", function (event) {
    var elt = event.detail.elt;
    var map = pending();
    map[fieldName(elt)] = valueOf(fieldName(elt));
    keep(map);
    status(elt, "Not saved yet: no connection. Kept on this device; it will be saved when the connection returns.", "text-danger fw-semibold");
    showBanner();
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) { return; }
    var map = pending();
    var name = fieldName(event.detail.elt);
    if (name in map && map[name] === valueOf(name)) { delete map[name]; keep(map); }
  });

  function resend() {
    var map = pending();
    Object.keys(map).forEach(function (name) {
      var field = form.elements[name];
      if (!field) { return; }
      // Put the kept value back (a reload shows what the server has), then post it.
      if (field instanceof RadioNodeList || (field.length && !field.tagName)) {
        Array.prototype.forEach.call(field, function (r) { r.checked = r.value === map[name]; });
        field = field[0];
      } else {
        field.value = map[name];
      }
      var owner = field.closest("[hx-post]");
      if (owner) { window.htmx.trigger(owner, "change"); }
    });
  }
  window.addEventListener("online", function () { showBanner(); resend(); });
  window.addEventListener("offline", showBanner);
  // Moving to another record while offline would lose this page: stay, and say why.
  form.addEventListener("submit", function (event) {
    if (!navigator.onLine) {
      event.preventDefault();
      showBanner();
      if (banner) { banner.focus(); }
    }
  });
  showBanner();
  // After htmx has processed the page (it loads after this script).
  window.addEventListener("load", function () { if (navigator.onLine) { resend(); } });
})();
