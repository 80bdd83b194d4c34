// Quikly console conveniences. Every page works without this file: forms post and pages reload.
// With it: the pause switch answers in place, the secret has a Copy button, and the events
// fieldset has "Select all".
"use strict";

(function () {
  // The pause/resume switch: post the same form with fetch and flip the switch in place. Any
  // failure falls back to the normal form post, so the server's page explains what went wrong.
  document.addEventListener("submit", async function (ev) {
    var form = ev.target;
    if (!form.matches("form[data-toggle]")) return;
    ev.preventDefault();
    var button = form.querySelector("[role=switch]");
    var want = form.elements.active.value;
    button.disabled = true;
    try {
      var res = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "Accept": "application/json" },
        credentials: "same-origin",
      });
      if (!res.ok) throw new Error("HTTP " + res.status);
      var data = await res.json();
      if (String(data.is_active) !== want) throw new Error("unexpected state");
      applyToggle(form, data.is_active);
    } catch (err) {
      form.submit();
      return;
    } finally {
      button.disabled = false;
    }
    button.focus();
  });

  function applyToggle(form, active) {
    var button = form.querySelector("[role=switch]");
    button.setAttribute("aria-checked", String(active));
    form.elements.active.value = String(!active);
    var label = form.querySelector("[data-toggle-label]");
    if (label) label.textContent = active ? "Active" : "Paused";
    var id = form.getAttribute("data-toggle");
    document.querySelectorAll("[data-paused-note='" + id + "']").forEach(function (el) {
      el.hidden = active;
    });
    var live = document.getElementById("live");
    if (live) {
      live.textContent = active
        ? "Webhook resumed. Held events are being delivered, oldest first."
        : "Webhook paused. New events are held until you resume it.";
    }
  }

  // Copy buttons: shown only when script runs, since without it they could do nothing.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", async function () {
      var target = document.querySelector(button.getAttribute("data-copy"));
      var status = document.getElementById(button.getAttribute("aria-describedby") || "");
      var text = target.value !== undefined ? target.value : target.textContent;
      var ok = false;
      try {
        await navigator.clipboard.writeText(text);
        ok = true;
      } catch (err) {
        // Older browsers, or a page without clipboard permission: select and copy.
        target.focus();
        if (target.select) target.select();
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      }
      button.textContent = ok ? "Copied" : "Copy";
      if (status) status.textContent = ok ? "Secret copied to the clipboard." : "Select the secret and copy it by hand.";
    });
  });

  // "Select all" for the events fieldset, kept in step with the boxes it controls.
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var wrap = all.closest(".check");
    if (wrap) wrap.hidden = false;
    var boxes = document.querySelectorAll("input[name='" + all.getAttribute("data-select-all") + "']");
    function sync() {
      var checked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      sync();
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    sync();
  });
})();
