/* Unsent judgements survive a session that ends mid-item. Vanilla JS, no inline script (CSP).
 *
 * While an annotator works on an item, the workspace form's answers (choice, strength, ratings, flags,
 * rationale) are kept in this tab's sessionStorage under the form's action (one lease, one item). When a
 * submit meets an expired session, the server sends the browser to the sign-in page and back; the same
 * lease's form then comes back filled in, with a note saying so. A stored answer (HTTP 200) clears it.
 */
(function () {
  "use strict";

  var PREFIX = "prefstudio:draft:";
  var SKIP = { csrf_token: true, idempotency_key: true, seconds: true };
  var restoring = false;

  function keyOf(form) {
    var action = form.getAttribute("action");
    return action ? PREFIX + action : null;
  }

  function store() {
    try { return window.sessionStorage; } catch (e) { return null; }  // storage may be disabled
  }

  function save(form) {
    var key = keyOf(form);
    var storage = store();
    if (!key || !storage || restoring) return;
    var pairs = [];
    new FormData(form).forEach(function (value, name) {
      if (!SKIP[name] && typeof value === "string") pairs.push([name, value]);
    });
    storage.setItem(key, JSON.stringify(pairs));
  }

  function restore(form) {
    var key = keyOf(form);
    var storage = store();
    var raw = key && storage ? storage.getItem(key) : null;
    if (!raw || form.dataset.restored === "1") return;
    var pairs;
    try { pairs = JSON.parse(raw); } catch (e) { storage.removeItem(key); return; }
    if (!Array.isArray(pairs) || !pairs.length) return;
    form.dataset.restored = "1";
    restoring = true;
    pairs.forEach(function (pair) {
      var fields = form.querySelectorAll('[name="' + String(pair[0]).replace(/["\\]/g, "") + '"]');
      Array.prototype.forEach.call(fields, function (field) {
        if (field.type === "radio" || field.type === "checkbox") {
          if (field.value === pair[1] && !field.checked) {
            field.checked = true;
            field.dispatchEvent(new Event("change", { bubbles: true }));
          }
        } else if (field.tagName === "TEXTAREA" || field.type === "text") {
          field.value = pair[1];
        }
      });
    });
    restoring = false;
    save(form);
    var note = document.createElement("div");
    note.className = "flash ok draft-restored";
    note.setAttribute("role", "status");
    note.textContent = "Your unsent answer was restored: check it and submit.";
    form.insertBefore(note, form.firstChild);
  }

  function restoreIn(root) {
    if (!root || !root.querySelectorAll) return;
    var forms = Array.prototype.slice.call(root.querySelectorAll("form.workspace-form"));
    if (root.matches && root.matches("form.workspace-form")) forms.push(root);
    forms.forEach(restore);
  }

  function onEdit(event) {
    var form = event.target && event.target.form;
    if (form && form.matches("form.workspace-form")) save(form);
  }

  // Before the swap: afterwards the form is detached, and its events no longer reach the document.
  function onBeforeSwap(event) {
    var detail = event.detail || {};
    var form = detail.requestConfig && detail.requestConfig.elt;  // detail.elt is the swap target
    var xhr = detail.xhr;
    if (!form || !form.matches || !form.matches("form.workspace-form") || !xhr) return;
    var key = keyOf(form);
    var storage = store();
    if (xhr.status === 200 && key && storage) storage.removeItem(key);  // stored: nothing left to keep
  }

  document.addEventListener("change", onEdit);
  document.addEventListener("input", onEdit);
  document.addEventListener("htmx:beforeSwap", onBeforeSwap);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { restoreIn(document); });
  } else {
    restoreIn(document);
  }
})();
