// certdesk: small progressive enhancements; every page works without it.
(function () {
  "use strict";
  // Disable a submit button while its form is sent, and show progress, so a
  // double click does not send twice and nobody thinks it froze.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.noBusy !== undefined) return;
    // A form its own script handles (it called preventDefault, e.g. the
    // KeyGen password form) is not sent: that script manages its button.
    // Disabling it here left it disabled after a refused password.
    if (ev.defaultPrevented) return;
    var btn = ev.submitter || form.querySelector("button[type=submit]");
    if (btn && !btn.disabled) {
      // let the browser read the button's value first
      setTimeout(function () { btn.disabled = true; btn.setAttribute("aria-busy", "true"); }, 0);
    }
  });
  // Confirm destructive actions marked with data-confirm.
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.getAttribute("data-confirm"))) ev.preventDefault();
  });
})();
