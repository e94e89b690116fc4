// certdesk order form: instant add/remove of recipients, toggles and the
// price. Without JavaScript the same buttons do a server round-trip that
// keeps everything typed.
(function () {
  "use strict";
  var form = document.getElementById("order-form");
  if (!form) return;
  var product = document.getElementById("product");
  var list = document.getElementById("recipients");
  var count = document.getElementById("recipient-count");

  function selected() { return product.options[product.selectedIndex]; }
  function checked(name) {
    var el = form.querySelector('input[name="' + name + '"]:checked');
    return el ? el.value : "";
  }
  function blocks() { return Array.prototype.slice.call(list.querySelectorAll(".recipient")); }

  function days() {
    var v = checked("validity");
    if (v === "2y") return 730;
    if (v === "3y") return 1095;
    if (v === "custom_days") return parseInt(document.getElementById("custom_days").value, 10) || 365;
    if (v === "custom_date") {
      var d = Date.parse(document.getElementById("custom_date").value);
      if (!isNaN(d)) return Math.max(1, Math.ceil((d - Date.now()) / 86400000));
    }
    return 365;
  }
  function euro(c) { return "\u20ac" + Math.floor(c / 100) + "." + ("0" + (c % 100)).slice(-2); }

  function update() {
    var opt = selected();
    document.getElementById("legacy-notice").hidden = opt.dataset.legacy !== "1";
    document.getElementById("org-field").hidden = opt.dataset.needsOrg !== "1";
    var personal = opt.dataset.personalName === "1";
    blocks().forEach(function (b) {
      var i = b.dataset.index;
      var nameRadio = b.querySelector('input[name="r' + i + '_cn"][value="name"]');
      if (nameRadio) {
        nameRadio.disabled = !personal;
        // products that name the person default to the name as common name
        if (personal && !nameRadio.checked && !b.dataset.cnTouched) nameRadio.checked = true;
        if (!personal && nameRadio.checked) b.querySelector('input[name="r' + i + '_cn"][value="email"]').checked = true;
      }
      var csr = b.querySelector('input[name="r' + i + '_csrmode"][value="csr"]');
      b.querySelector(".csr-fields").hidden = !(csr && csr.checked);
      var rm = b.querySelector(".remove-recipient");
      if (rm) rm.hidden = blocks().length < 2;
    });
    var v = checked("validity");
    document.getElementById("custom_date").closest(".field").hidden = v !== "custom_date";
    document.getElementById("custom_days").closest(".field").hidden = v !== "custom_days";
    document.getElementById("plan-note").hidden = days() <= 825;
    document.getElementById("card-fields").hidden = checked("payment_method") !== "card";
    var per = (parseInt(opt.dataset.price, 10) || 0) * Math.ceil(days() / 365);
    document.getElementById("price-per").textContent = euro(per);
    document.getElementById("price-total").textContent = euro(per * blocks().length);
  }

  function renumber() {
    blocks().forEach(function (b, i) {
      var old = b.dataset.index;
      b.dataset.index = String(i);
      var h = b.querySelector("h2");
      if (h) h.textContent = h.textContent.replace(/\d+/, String(i + 1));
      b.querySelectorAll("[name],[id],[for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (a) {
          var val = el.getAttribute(a);
          if (val && val.indexOf("r" + old + "_") === 0) el.setAttribute(a, "r" + i + "_" + val.slice(("r" + old + "_").length));
        });
      });
      var rm = b.querySelector(".remove-recipient");
      if (rm) rm.value = "remove:" + i;
    });
    count.value = String(blocks().length);
  }

  form.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.id === "add-recipient") {
      ev.preventDefault();
      var all = blocks();
      var last = all[all.length - 1];
      var copy = last.cloneNode(true);
      copy.querySelectorAll("input[type=text],input[type=email],textarea,input[type=file]").forEach(function (el) { el.value = ""; });
      copy.querySelectorAll(".error").forEach(function (el) { el.remove(); });
      copy.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
      copy.querySelectorAll('input[value="email"],input[value="browser"]').forEach(function (el) { el.checked = true; });
      delete copy.dataset.cnTouched;
      if (!copy.querySelector(".remove-recipient")) {
        var rm = document.createElement("button");
        rm.type = "submit"; rm.name = "action"; rm.className = "link remove-recipient";
        rm.textContent = list.dataset.removeLabel || "Remove";
        copy.appendChild(rm);
      }
      copy.dataset.index = String(all.length + 1000);
      // rename from the copied index to a temporary one, then renumber
      copy.querySelectorAll("[name],[id],[for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (a) {
          var val = el.getAttribute(a);
          var p = "r" + last.dataset.index + "_";
          if (val && val.indexOf(p) === 0) el.setAttribute(a, "r" + copy.dataset.index + "_" + val.slice(p.length));
        });
      });
      list.insertBefore(copy, btn);
      renumber();
      update();
      var first = copy.querySelector("input[type=email]");
      if (first) first.focus();
    } else if (btn.classList.contains("remove-recipient")) {
      ev.preventDefault();
      if (blocks().length < 2) return;
      btn.closest(".recipient").remove();
      renumber();
      update();
    }
  });
  form.addEventListener("change", function (ev) {
    if (ev.target.name && /_cn$/.test(ev.target.name)) ev.target.closest(".recipient").dataset.cnTouched = "1";
    update();
  });
  form.addEventListener("input", function (ev) { if (ev.target.type === "number" || ev.target.type === "date") update(); });
  update();
})();
