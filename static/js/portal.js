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
