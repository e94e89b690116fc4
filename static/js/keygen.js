// certdesk KeyGen page glue. The recipient's key pair, CSR and PKCS#12 are
// made in this page by the Go WebAssembly module (wasm/main.go); only the CSR
// is sent. The private key and the .p12 never go to the server, to
// localStorage or to sessionStorage. No inline script: this file is loaded
// with <script src> under CSP script-src 'self' 'wasm-unsafe-eval'.
//
// Markup (templ): <main id="keygen" data-token data-email data-exchange-url
// data-wasm-url data-csrf data-msg-*> with #kg-generate, #kg-steps
// (li[data-step=key|request|package]), #kg-password-form (#kg-password,
// #kg-password2, #kg-strength with a <meter> and a text element,
// input[name=kg-mode] modern|compatible, #kg-pack), #kg-error and #kg-done.
// Optional: data-wasm-exec-url (default /static/wasm_exec.js).
//
// WebCrypto makes the key pair and signs; the module (Go) builds the CSR
// and the PKCS#12. Without WebCrypto (an old browser, or a page not served
// over https or from localhost, where crypto.subtle does not exist) the
// page says so (data-msg-no-webcrypto) instead of generating a key.
// static/js/keygen-boot.js, when the page loads it, has already started
// compiling the module (window.certdeskKeyGenModule).
(function () {
  "use strict";

  function mark(name) {
    if (window.performance && typeof performance.mark === "function") performance.mark(name);
  }
  mark("kg-script");

  var RSA_PARAMS = {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256"
  };

  var root = document.getElementById("keygen");
  var data = root ? root.dataset : {};
  var wasmExecURL = data.wasmExecUrl || "/static/wasm_exec.js";

  function $(id) { return document.getElementById(id); }

  // msg returns the translated string from data-msg-<name> on #keygen,
  // falling back to data-msg-failed; there is no English in this file.
  function msg(name) {
    var key = "msg" + name.replace(/(^|-)([a-z0-9])/g, function (_, __, c) { return c.toUpperCase(); });
    return data[key] || data.msgFailed || "";
  }

  function hasWasm() {
    return typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";
  }

  function hasWebCrypto() {
    return !!(window.isSecureContext && window.crypto && window.crypto.subtle &&
      typeof window.crypto.subtle.generateKey === "function");
  }

  // PEM armour is done here, not in the module (encoding/pem would add
  // 14 kB to it): the module takes and returns DER.
  function derToPEM(type, der) {
    var bin = "";
    for (var i = 0; i < der.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, der.subarray(i, i + 0x8000));
    }
    var b64 = btoa(bin);
    var out = "-----BEGIN " + type + "-----\n";
    for (var j = 0; j < b64.length; j += 64) out += b64.slice(j, j + 64) + "\n";
    return out + "-----END " + type + "-----\n";
  }

  // pemToDER decodes the first PEM block of the given type; it throws a
  // "certificate" error for anything else.
  function pemToDER(type, text) {
    var begin = "-----BEGIN " + type + "-----", end = "-----END " + type + "-----";
    var a = typeof text === "string" ? text.indexOf(begin) : -1;
    var b = a < 0 ? -1 : text.indexOf(end, a + begin.length);
    if (b < 0) throw codeError("certificate");
    var bin;
    try {
      bin = atob(text.slice(a + begin.length, b).replace(/\s+/g, ""));
    } catch (e) {
      throw codeError("certificate");
    }
    var der = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
    return der;
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.async = true;
      s.onload = function () { resolve(); };
      s.onerror = function () { reject(new Error("load " + src)); };
      document.head.appendChild(s);
    });
  }

  // loadKeyGen fetches and starts the module once; it resolves to
  // window.certdeskKeyGen when the module has signalled it is ready.
  var loading = null;
  function loadKeyGen() {
    if (loading) return loading;
    loading = (async function () {
      if (!hasWasm()) throw codeError("no-wasm");
      if (!data.wasmUrl) throw codeError("failed");
      if (typeof window.Go !== "function") await loadScript(wasmExecURL);
      var go = new window.Go();
      var ready = new Promise(function (resolve) {
        if (window.certdeskKeyGen && window.certdeskKeyGen.ready) { resolve(); return; }
        window.addEventListener("certdeskKeyGenReady", function () { resolve(); }, { once: true });
      });
      var result = null;
      mark("kg-instantiate");
      // The module keygen-boot.js started compiling while the page parsed.
      var early = window.certdeskKeyGenModule;
      if (early && early.url === data.wasmUrl && early.module) {
        window.certdeskKeyGenModule = null; // a retry compiles afresh
        try {
          result = { instance: await WebAssembly.instantiate(await early.module, go.importObject) };
        } catch (e) {
          result = null;
        }
      }
      if (!result && typeof WebAssembly.instantiateStreaming === "function") {
        try {
          result = await WebAssembly.instantiateStreaming(
            fetch(data.wasmUrl, { credentials: "same-origin" }), go.importObject);
        } catch (e) {
          result = null; // e.g. served with the wrong MIME type: try the slow way
        }
      }
      if (!result) {
        var resp = await fetch(data.wasmUrl, { credentials: "same-origin" });
        if (!resp.ok) throw codeError("failed");
        result = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
      }
      mark("kg-instantiated");
      go.run(result.instance); // settles only if the Go program exits
      await ready;
      mark("kg-ready");
      return window.certdeskKeyGen;
    })();
    loading.catch(function () { loading = null; }); // allow a retry
    return loading;
  }

  function codeError(code) {
    var e = new Error(code);
    e.code = code;
    return e;
  }

  // keyHandover resolves when the WebCrypto key has been handed to the
  // module for packaging.
  var keyHandover = null;

  // signRequest has the module build the CertificationRequestInfo for the
  // pair's public key, WebCrypto sign and verify it, and the module
  // assemble the CSR; it returns the CSR PEM.
  async function signRequest(api, email, pair) {
    var subtle = window.crypto.subtle;
    var spki = new Uint8Array(await subtle.exportKey("spki", pair.publicKey));
    var info = await api.csrInfo(email, spki);
    var sig = new Uint8Array(await subtle.sign("RSASSA-PKCS1-v1_5", pair.privateKey, info));
    // Checked before it leaves the page, as crypto/x509 does; the CA checks
    // it again (proof of possession).
    if (!(await subtle.verify("RSASSA-PKCS1-v1_5", pair.publicKey, sig, info))) throw codeError("failed");
    return derToPEM("CERTIFICATE REQUEST", await api.csrAssemble(sig));
  }

  // webCryptoCSR makes the key with WebCrypto and has WebCrypto sign the
  // request info the module builds, so no private-key operation runs in
  // WebAssembly before the CSR is ready. The private key is then exported
  // once, straight into the module (which wipes the array), for the
  // PKCS#12; that runs while the CSR is on its way to the server.
  async function webCryptoCSR(api, email) {
    var pair = await window.crypto.subtle.generateKey(RSA_PARAMS, true, ["sign", "verify"]);
    var csr = await signRequest(api, email, pair);
    var priv = pair.privateKey;
    pair = null;
    keyHandover = (async function () {
      // A task later, so the caller sends the CSR first: the export and
      // the module's import take ~10 ms of main thread.
      await new Promise(function (resolve) { setTimeout(resolve, 0); });
      var der = new Uint8Array(await window.crypto.subtle.exportKey("pkcs8", priv));
      priv = null;
      try {
        await api.importKey(der);
      } finally {
        der.fill(0);
        der = null;
      }
    })();
    keyHandover.catch(function () {}); // reported when pack awaits it
    return csr;
  }

  // makeCSR runs the key step and returns the CSR PEM. There is no
  // pure-Go fallback (it would make the module 36 kB bigger): without
  // WebCrypto the page says so.
  async function makeCSR(api, email) {
    keyHandover = null;
    if (!hasWebCrypto()) throw codeError("no-webcrypto");
    try {
      return await webCryptoCSR(api, email);
    } catch (e) {
      keyHandover = null;
      if (e && typeof e.code === "string") throw e; // the module refused: report it
      throw codeError("failed");
    }
  }

  // nextPaint resolves after the browser has had a chance to paint, so a
  // step shows as active before Go takes the main thread.
  function nextPaint() {
    return new Promise(function (resolve) {
      var done = false;
      function go() { if (!done) { done = true; resolve(); } }
      if (typeof requestAnimationFrame === "function") {
        requestAnimationFrame(function () { setTimeout(go, 0); });
      }
      setTimeout(go, 100);
    });
  }

  // Benchmark hook (used only by wasm/internal/benchpage): each function
  // resolves to milliseconds. They refuse to run while the page's own flow
  // holds a key, so they can never drop the recipient's key.
  var flowStarted = false;
  function benchGuard() {
    if (flowStarted) throw codeError("busy");
  }
  window.certdeskKeyGenBench = {
    webCryptoKeyCSR: async function () {
      benchGuard();
      if (!hasWebCrypto()) throw codeError("no-webcrypto");
      var api = await loadKeyGen();
      var t0 = performance.now();
      await makeCSR(api, "bench@example.com");
      var ms = performance.now() - t0;
      if (keyHandover) await keyHandover;
      keyHandover = null;
      api.drop();
      return ms;
    },
    // webCryptoKeyCSR split into its parts, from one key:
    // {generate, export, go, total} in milliseconds.
    webCryptoKeyCSRSplit: async function () {
      benchGuard();
      if (!hasWebCrypto()) throw codeError("no-webcrypto");
      var api = await loadKeyGen();
      var t0 = performance.now();
      var pair = await window.crypto.subtle.generateKey(RSA_PARAMS, true, ["sign", "verify"]);
      var t1 = performance.now();
      await signRequest(api, "bench@example.com", pair);
      var t2 = performance.now();
      pair = null;
      api.drop();
      return { generate: t1 - t0, go: t2 - t1, total: t2 - t0 };
    },
    webCryptoGenerateOnly: async function () {
      if (!hasWebCrypto()) throw codeError("no-webcrypto");
      var t0 = performance.now();
      var pair = await window.crypto.subtle.generateKey(RSA_PARAMS, true, ["sign", "verify"]);
      var ms = performance.now() - t0;
      pair = null;
      return ms;
    }
  };

  if (!root) return;

  var btnGenerate = $("kg-generate");
  var steps = $("kg-steps");
  var form = $("kg-password-form");
  var pw1 = $("kg-password");
  var pw2 = $("kg-password2");
  var strength = $("kg-strength");
  var btnPack = $("kg-pack");
  var errorBox = $("kg-error");
  var done = $("kg-done");
  var minLength = 10; // replaced by the module's value once loaded

  var issued = null; // {certificate, chain} from the exchange
  // The downloaded .p12 (password-protected; the bare key is never kept),
  // for #kg-download-again: the browser may not have kept the download (a
  // cancelled save dialog, a blocked download) and the key is gone.
  var saved = null; // {bytes, name}

  // From the exchange to the download the key exists only in this page:
  // leaving it (reload, the language switch, closing the tab) loses the
  // key and the link is spent, so the browser asks first.
  function guardLeave(ev) {
    if (!issued) return;
    ev.preventDefault();
    ev.returnValue = "";
  }

  function setLeaveGuard(on) {
    if (on) window.addEventListener("beforeunload", guardLeave);
    else window.removeEventListener("beforeunload", guardLeave);
  }

  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text || msg("failed");
    errorBox.hidden = false;
  }

  function clearError() {
    if (!errorBox) return;
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  function setStep(name, state) {
    if (!steps) return;
    var li = steps.querySelector('[data-step="' + name + '"]');
    if (!li) return;
    li.classList.remove("is-active", "is-done", "is-error");
    li.removeAttribute("aria-current");
    if (state) li.classList.add("is-" + state);
    if (state === "active") li.setAttribute("aria-current", "step");
  }

  function errorText(e) {
    var code = e && e.code;
    if (code === "password-too-short" || code === "password-empty") return msg("too-short");
    if (code === "no-wasm") return msg("no-wasm");
    if (code === "no-webcrypto") return msg("no-webcrypto");
    if (code && data["msg" + code.replace(/(^|-)([a-z0-9])/g, function (_, __, c) { return c.toUpperCase(); })]) {
      return msg(code);
    }
    return msg("failed");
  }

  // --- password strength -------------------------------------------------

  // estimateBits is a rough entropy estimate: length times log2 of the
  // character pool, discounted for repeated characters and simple runs.
  function estimateBits(pw) {
    if (!pw) return 0;
    var pool = 0;
    if (/[a-z]/.test(pw)) pool += 26;
    if (/[A-Z]/.test(pw)) pool += 26;
    if (/[0-9]/.test(pw)) pool += 10;
    if (/[^a-zA-Z0-9]/.test(pw)) pool += 33;
    var chars = Array.from(pw);
    var unique = new Set(chars).size;
    var runs = 0;
    for (var i = 1; i < chars.length; i++) {
      var d = chars[i].codePointAt(0) - chars[i - 1].codePointAt(0);
      if (d === 0 || d === 1 || d === -1) runs++;
    }
    var effective = Math.min(chars.length, unique * 2) - runs / 2;
    return Math.max(0, effective * Math.log2(Math.max(pool, 2)));
  }

  function updateStrength() {
    if (!strength || !pw1) return;
    var meter = strength.querySelector("meter");
    var text = strength.querySelector("[data-strength-text]") || strength.querySelector("span, output, p");
    var pw = pw1.value;
    var bits = estimateBits(pw);
    var label = "";
    if (pw.length === 0) label = "";
    else if (Array.from(pw).length < minLength) label = msg("too-short");
    else if (bits < 50) label = msg("weak");
    else if (bits < 75) label = msg("fair");
    else label = msg("strong");
    if (meter) {
      if (!meter.hasAttribute("max")) { meter.max = 100; meter.low = 50; meter.high = 75; meter.optimum = 100; }
      meter.value = Math.min(bits, Number(meter.max) || 100);
    }
    if (text) text.textContent = label;
  }

  // --- flow ----------------------------------------------------------------

  async function exchange(csr) {
    var resp;
    try {
      resp = await fetch(data.exchangeUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": data.csrf || "" },
        body: JSON.stringify({ token: data.token, csr: csr })
      });
    } catch (e) {
      throw codeError("failed");
    }
    var body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (body && Array.isArray(body.errors) && body.errors.length) {
      var e2 = codeError("exchange");
      e2.serverMessage = body.errors.map(function (x) { return x && x.message; }).filter(Boolean).join(" ");
      throw e2;
    }
    if (!resp.ok || !body || typeof body.certificate !== "string") throw codeError("failed");
    var chain = Array.isArray(body.chain) ? body.chain.filter(function (c) { return typeof c === "string"; }) : [];
    return {
      certificate: pemToDER("CERTIFICATE", body.certificate),
      chain: chain.map(function (c) { return pemToDER("CERTIFICATE", c); })
    };
  }

  async function onGenerate() {
    clearError();
    if (btnGenerate) { btnGenerate.disabled = true; btnGenerate.setAttribute("aria-busy", "true"); }
    var step = "key";
    flowStarted = true;
    var api = null;
    try {
      setStep("key", "active");
      await nextPaint();
      api = await loadKeyGen();
      var csr = await makeCSR(api, data.email || "");
      setStep("key", "done");
      step = "request";
      setStep("request", "active");
      issued = await exchange(csr);
      setLeaveGuard(true);
      csr = null;
      setStep("request", "done");
      if (btnGenerate) btnGenerate.hidden = true;
      if (form) {
        form.hidden = false;
        if (pw1) pw1.focus();
      }
    } catch (e) {
      setStep(step, "error");
      if (api) api.drop();
      issued = null;
      setLeaveGuard(false);
      flowStarted = false;
      showError(e && e.serverMessage ? e.serverMessage : errorText(e));
      if (btnGenerate) btnGenerate.disabled = false;
    } finally {
      if (btnGenerate) btnGenerate.removeAttribute("aria-busy");
    }
  }

  function selectedMode() {
    var r = form ? form.querySelector('input[name="kg-mode"]:checked') : null;
    return r ? r.value : "modern";
  }

  function safeFileName(email) {
    return (email || "certificate").replace(/[\\/:*?"<>|\u0000-\u001f]/g, "_") + ".p12";
  }

  function download(bytes, name) {
    var blob = new Blob([bytes], { type: "application/x-pkcs12" });
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    // Revoke once the download has started; the Blob is then released.
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  async function onPack(ev) {
    ev.preventDefault();
    clearError();
    if (!issued) { showError(msg("failed")); return; }
    var pw = pw1 ? pw1.value : "";
    if (Array.from(pw).length < minLength) { showError(msg("too-short")); if (pw1) pw1.focus(); return; }
    if (!pw2 || pw !== pw2.value) { showError(msg("mismatch")); if (pw2) pw2.focus(); return; }
    if (btnPack) { btnPack.disabled = true; btnPack.setAttribute("aria-busy", "true"); }
    setStep("package", "active");
    await nextPaint();
    var p12 = null;
    try {
      var api = await loadKeyGen();
      if (keyHandover) await keyHandover;
      p12 = await api.pack(issued.certificate, issued.chain, pw, selectedMode());
      saved = { bytes: p12, name: safeFileName(data.email) };
      p12 = null;
      download(saved.bytes, saved.name);
      setStep("package", "done");
      issued = null;
      setLeaveGuard(false);
      if (pw1) pw1.value = "";
      if (pw2) pw2.value = "";
      updateStrength();
      if (form) form.hidden = true;
      if (done) { done.hidden = false; if (typeof done.focus === "function") { done.tabIndex = -1; done.focus(); } }
    } catch (e) {
      // The key stays in the module, so a different password can be tried.
      setStep("package", "error");
      showError(errorText(e));
      if (e && typeof e.code === "string" && e.code.indexOf("password-") === 0 && pw1) pw1.focus();
    } finally {
      if (p12) p12.fill(0);
      p12 = null;
      if (btnPack) { btnPack.disabled = false; btnPack.removeAttribute("aria-busy"); }
    }
  }

  function init() {
    if (!hasWasm() || !hasWebCrypto()) {
      showError(msg(hasWasm() ? "no-webcrypto" : "no-wasm"));
      if (btnGenerate) btnGenerate.disabled = true;
      return;
    }
    if (form) form.hidden = true;
    if (done) done.hidden = true;
    // Rendered disabled, so that without JavaScript it is not a button
    // that does nothing (the page's <noscript> says why).
    if (btnGenerate) btnGenerate.disabled = false;
    // Fetch and compile the module while the recipient reads the page.
    loadKeyGen().then(function (api) {
      if (api && api.minPasswordLength) minLength = api.minPasswordLength;
    }, function (e) {
      showError(errorText(e));
    });
    if (btnGenerate) btnGenerate.addEventListener("click", onGenerate);
    if (form) form.addEventListener("submit", onPack);
    if (pw1) pw1.addEventListener("input", updateStrength);
    var again = $("kg-download-again");
    if (again) again.addEventListener("click", function () { if (saved) download(saved.bytes, saved.name); });
    // Leaving the page drops the key (a new visit starts over).
    window.addEventListener("pagehide", function () {
      if (saved) { saved.bytes.fill(0); saved = null; }
      if (window.certdeskKeyGen && window.certdeskKeyGen.drop) window.certdeskKeyGen.drop();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
