// certdesk KeyGen boot: starts fetching and compiling the WebAssembly module
// while the page is still being parsed, so that static/js/keygen.js (which
// runs after parsing, with wasm_exec.js) only has to instantiate it. Loaded
// as a plain <script src data-wasm-url> early in the page (no inline
// script: CSP script-src 'self' 'wasm-unsafe-eval'). It fetches the same URL with the same
// credentials mode as the page's <link rel="preload" as="fetch"
// crossorigin="anonymous">, so the bytes already on their way are reused.
// It sets window.certdeskKeyGenModule to a Promise of the compiled
// WebAssembly.Module; on any failure keygen.js fetches the module itself.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.getAttribute("data-wasm-url");
  if (!url || typeof WebAssembly !== "object" || typeof WebAssembly.compileStreaming !== "function" ||
      typeof fetch !== "function") {
    return;
  }
  if (window.performance && typeof performance.mark === "function") performance.mark("kg-boot");
  var compiled = WebAssembly.compileStreaming(fetch(url, { credentials: "same-origin" }));
  compiled.then(function () {
    if (window.performance && typeof performance.mark === "function") performance.mark("kg-compiled");
  }, function () {}); // keygen.js sees a rejection and retries the slow way
  window.certdeskKeyGenModule = { url: url, module: compiled };
})();
