/* prefstudio keyboard shortcuts and time on task. Vanilla JS, no inline scripts (CSP script-src 'self').
 *
 * Every listener is delegated on `document`, so forms swapped in by htmx work without re-binding.
 *
 * Markup contract (templates):
 *   form.workspace-form               pairwise workspace
 *   form.workspace-form.likert        Likert workspace
 *   input[type=radio][name=choice]    values a / b / tie / both_bad (the SHOWN sides: left = a, right = b)
 *   input[type=radio][name=strength]  values 1 / 2 / 3
 *   input[type=radio][name=rating_<attribute>]  values 1..7; the row is its closest .likert-row or tr
 *   input[type=hidden][name=seconds]  filled on submit with the seconds spent on this item
 *   [data-action=submit]              optional: the button Enter submits with
 *   [data-action=skip]                clicked by "s"
 *   .help-overlay                     shown by adding .open; [data-action=toggle-help] and
 *                                     [data-action=close-help] buttons work by click too
 *   .response[data-side=a|b]          optional: gets .chosen when that side is chosen
 *
 * Keys (ignored while typing in a text field, and when Ctrl/Alt/Meta is held):
 *   pairwise: 1 A better, 2 B better, 3 tie, 4 both bad; q / w / e strength 1 / 2 / 3
 *   Likert:   1-7 rate the current row and move to the next; ArrowDown / ArrowUp change row
 *             (Tab moves between rows natively: each row is one radio group)
 *   both:     Enter submit (Ctrl+Enter from the rationale textarea), s skip, ? help, Escape close help
 */
(function () {
  "use strict";

  var CHOICES = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" };
  var STRENGTHS = { q: "1", w: "2", e: "3" };
  var NOT_TYPING = ["radio", "checkbox", "button", "submit", "reset", "range", "hidden", "color", "file"];

  // Time on task, not counting time the tab was hidden.
  var startedAt = new WeakMap();
  var hiddenTotal = 0;
  var hiddenSince = document.hidden ? Date.now() : null;

  function hiddenMs() {
    return hiddenTotal + (hiddenSince === null ? 0 : Date.now() - hiddenSince);
  }

  function markForms(root) {
    if (!root || !root.querySelectorAll) return;
    var forms = Array.prototype.slice.call(root.querySelectorAll("form.workspace-form"));
    if (root.matches && root.matches("form.workspace-form")) forms.push(root);
    forms.forEach(function (form) {
      if (!startedAt.has(form)) startedAt.set(form, { at: Date.now(), hidden: hiddenMs() });
      if (form.classList.contains("likert")) setRow(form, firstUnratedRow(form), false);
      var chosen = form.querySelector('input[type="radio"][name="choice"]:checked');
      if (chosen) markChosen(form, chosen.value);
    });
  }

  function elapsedSeconds(form) {
    var start = startedAt.get(form);
    if (!start) return null;
    var ms = Date.now() - start.at - (hiddenMs() - start.hidden);
    return Math.max(0, Math.round(ms / 1000));
  }

  function workspaceForm() {
    return document.querySelector("form.workspace-form");
  }

  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && NOT_TYPING.indexOf((el.type || "text").toLowerCase()) === -1;
  }

  function checkRadio(form, name, value) {
    var radios = form.querySelectorAll('input[type="radio"]');
    for (var i = 0; i < radios.length; i++) {
      var radio = radios[i];
      if (radio.name === name && radio.value === value && !radio.disabled) {
        radio.checked = true;
        radio.dispatchEvent(new Event("input", { bubbles: true }));
        radio.dispatchEvent(new Event("change", { bubbles: true }));
        return radio;
      }
    }
    return null;
  }

  function markChosen(form, side) {
    var panels = (form.closest(".workspace") || document).querySelectorAll(".response[data-side]");
    panels.forEach(function (panel) {
      panel.classList.toggle("chosen", panel.getAttribute("data-side") === side);
    });
  }

  function submitButton(form) {
    return form.querySelector("[data-action=submit]") ||
      form.querySelector('button[type=submit]:not([data-action]), button:not([type]):not([data-action]), ' +
                         'input[type=submit]:not([data-action])');
  }

  function submit(form) {
    if (form.dataset.submitting === "1") return;
    var button = submitButton(form);
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit(button && button.form === form ? button : undefined);
    } else if (button) {
      button.click();
    }
  }

  function clickSkip(form) {
    var skip = form.querySelector("[data-action=skip]") || document.querySelector("[data-action=skip]");
    if (skip) skip.click();
  }

  // Likert rows: one radio group per attribute, in document order.
  function ratingNames(form) {
    var names = [];
    form.querySelectorAll('input[type="radio"][name^="rating_"]').forEach(function (radio) {
      if (names.indexOf(radio.name) === -1) names.push(radio.name);
    });
    return names;
  }

  function rowRadios(form, name) {
    return Array.prototype.filter.call(form.querySelectorAll('input[type="radio"]'), function (radio) {
      return radio.name === name;
    });
  }

  function firstUnratedRow(form) {
    var names = ratingNames(form);
    for (var i = 0; i < names.length; i++) {
      if (!rowRadios(form, names[i]).some(function (r) { return r.checked; })) return i;
    }
    return 0;
  }

  function setRow(form, index, moveFocus) {
    var names = ratingNames(form);
    if (!names.length) return;
    index = Math.max(0, Math.min(names.length - 1, index));
    form.dataset.currentRow = String(index);
    names.forEach(function (name, i) {
      var first = rowRadios(form, name)[0];
      var row = first && (first.closest(".likert-row") || first.closest("tr"));
      if (row) row.classList.toggle("current", i === index);
    });
    if (moveFocus) {
      var radios = rowRadios(form, names[index]);
      var target = radios.filter(function (r) { return r.checked; })[0] || radios[0];
      if (target) target.focus({ preventScroll: false });
    }
  }

  function currentRow(form) {
    var index = parseInt(form.dataset.currentRow || "0", 10);
    return isNaN(index) ? 0 : index;
  }

  function handleLikertKey(form, event) {
    var key = event.key;
    var focusInGrid = form.contains(document.activeElement) && document.activeElement !== form;
    if (/^[1-7]$/.test(key)) {
      var names = ratingNames(form);
      var index = currentRow(form);
      if (!names.length || !checkRadio(form, names[index], key)) return false;
      setRow(form, index + 1, focusInGrid);
      return true;
    }
    if (key === "ArrowDown" || key === "ArrowUp") {
      setRow(form, currentRow(form) + (key === "ArrowDown" ? 1 : -1), true);
      return true;
    }
    return false;
  }

  function handlePairwiseKey(form, event) {
    var key = event.key.toLowerCase();
    if (CHOICES[key]) {
      checkRadio(form, "choice", CHOICES[key]);  // its change event updates .response.chosen
      return true;
    }
    if (STRENGTHS[key]) {
      checkRadio(form, "strength", STRENGTHS[key]);
      return true;
    }
    return false;
  }

  function toggleHelp(force) {
    var overlay = document.querySelector(".help-overlay");
    if (!overlay) return false;
    var open = force === undefined ? !overlay.classList.contains("open") : force;
    overlay.classList.toggle("open", open);
    overlay.setAttribute("aria-hidden", open ? "false" : "true");
    return true;
  }

  function helpIsOpen() {
    var overlay = document.querySelector(".help-overlay");
    return !!overlay && overlay.classList.contains("open");
  }

  function onKeydown(event) {
    if (event.defaultPrevented || event.isComposing) return;
    var target = event.target;
    var form = workspaceForm();
    if (event.key === "Escape" && helpIsOpen()) {
      toggleHelp(false);
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form && target.tagName === "TEXTAREA" &&
        form.contains(target)) {
      event.preventDefault();
      if (!event.repeat) submit(form);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(target)) return;
    if (event.key === "?") {
      if (toggleHelp()) event.preventDefault();
      return;
    }
    if (!form || helpIsOpen()) return;
    if (event.key === "Enter") {
      if (event.repeat || target.closest("button, a, summary, [role=button]")) return;
      event.preventDefault();
      submit(form);
      return;
    }
    if (event.shiftKey) return;
    if (event.key.toLowerCase() === "s") {
      event.preventDefault();
      clickSkip(form);
      return;
    }
    var handled = form.classList.contains("likert") ? handleLikertKey(form, event)
                                                    : handlePairwiseKey(form, event);
    if (handled) event.preventDefault();
  }

  // Capture phase: runs before htmx's listener on the form reads the values.
  function onSubmit(event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.workspace-form")) return;
    if (form.dataset.submitting === "1") {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    form.dataset.submitting = "1";
    var seconds = form.querySelector('input[name="seconds"]');
    var elapsed = elapsedSeconds(form);
    if (seconds && elapsed !== null) seconds.value = String(elapsed);
    // Deferred: a disabled submitter would be left out of a plain (non-htmx) form post.
    setTimeout(function () { setBusy(form, true); }, 0);
  }

  function setBusy(form, busy) {
    if (!busy) delete form.dataset.submitting;
    var selector = busy ? "button[type=submit], button:not([type]), input[type=submit]" : "[data-busy]";
    form.querySelectorAll(selector).forEach(function (button) {
      if (busy && button.disabled) return;  // leave buttons the page disabled itself alone
      button.disabled = busy;
      if (busy) button.setAttribute("data-busy", ""); else button.removeAttribute("data-busy");
    });
  }

  function onAfterRequest(event) {
    var form = event.detail && event.detail.elt;
    // A failed request leaves the form in place: let the annotator try again.
    if (form && form.matches && form.matches("form.workspace-form") && form.isConnected) setBusy(form, false);
  }

  function onFocusIn(event) {
    var target = event.target;
    if (!target.matches || !target.matches('input[type="radio"][name^="rating_"]')) return;
    var form = target.closest("form.workspace-form.likert");
    if (form) setRow(form, ratingNames(form).indexOf(target.name), false);
  }

  function onClick(event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.closest("[data-action=toggle-help]")) {
      toggleHelp();
    } else if (target.closest("[data-action=close-help]") || target.classList.contains("help-overlay")) {
      toggleHelp(false);
    }
  }

  function onChange(event) {
    var target = event.target;
    if (target.name === "choice" && target.type === "radio" && target.checked && target.form) {
      markChosen(target.form, target.value);
    }
  }

  document.addEventListener("keydown", onKeydown);
  document.addEventListener("submit", onSubmit, true);
  document.addEventListener("focusin", onFocusIn);
  document.addEventListener("click", onClick);
  document.addEventListener("change", onChange);
  document.addEventListener("htmx:load", function (event) { markForms(event.detail && event.detail.elt); });
  document.addEventListener("htmx:afterRequest", onAfterRequest);
  // A swap that removed the focused element (the button just pressed) leaves focus nowhere; swapped-in
  // content names the control the keyboard goes on with (e.g. "Next item" after calibration feedback),
  // but the browser applies `autofocus` only once per page. So: focus lost -> the autofocus control.
  document.addEventListener("htmx:afterSettle", function () {
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var wanted = document.querySelector("[autofocus]");
    if (wanted) wanted.focus();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      hiddenSince = Date.now();
    } else if (hiddenSince !== null) {
      hiddenTotal += Date.now() - hiddenSince;
      hiddenSince = null;
    }
  });
  window.addEventListener("pageshow", function (event) {
    // Back/forward cache restores a page with its buttons still disabled.
    if (event.persisted) document.querySelectorAll("form.workspace-form").forEach(function (f) { setBusy(f, false); });
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { markForms(document); });
  } else {
    markForms(document);
  }
})();

/* Guidelines overlay (key g) ----------------------------------------------------------------------------
 *
 * Markup contract (templates/annotation/_workspace.html):
 *   a[data-action=toggle-guidelines][data-panel=URL]  a plain link to the guidelines page (works without JS);
 *                                                    with JS, g or a click opens URL's fragment in the overlay
 *   .guidelines-overlay > .guidelines-box            shown by adding .open; the fragment goes in the box
 *   [data-action=close-guidelines]                   closes it, as do Escape, g and a click on the backdrop
 *
 * The fragment is fetched on every opening, so a version published meanwhile shows at once. While the
 * overlay is open, other keys do not reach the workspace (no accidental votes while reading).
 */
(function () {
  "use strict";

  var TEXT_TYPES = ["radio", "checkbox", "button", "submit", "reset", "range", "hidden", "color", "file"];

  function overlay() {
    return document.querySelector(".guidelines-overlay");
  }

  function isOpen() {
    var el = overlay();
    return !!el && el.classList.contains("open");
  }

  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && TEXT_TYPES.indexOf((el.type || "text").toLowerCase()) === -1;
  }

  function close() {
    var el = overlay();
    if (!el) return;
    el.classList.remove("open");
    el.setAttribute("aria-hidden", "true");
  }

  function open() {
    var el = overlay();
    var link = document.querySelector("[data-action=toggle-guidelines][data-panel]");
    if (!el || !link) return false;
    var box = el.querySelector(".guidelines-box");
    box.textContent = "Loading the guidelines…";
    el.classList.add("open");
    el.setAttribute("aria-hidden", "false");
    fetch(link.getAttribute("data-panel"), { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;  // server-rendered; the markdown went through the sanitizer
        var button = box.querySelector("[data-action=close-guidelines]");
        if (button) button.focus();
      })
      .catch(function () {
        box.textContent = "The guidelines could not be loaded; use the Guidelines link instead.";
      });
    return true;
  }

  function onKeydown(event) {
    if (event.defaultPrevented || event.isComposing) return;
    if (isOpen()) {
      if (event.key === "Escape" || (event.key === "g" && !event.ctrlKey && !event.metaKey && !event.altKey)) {
        event.preventDefault();
        close();
      }
      event.stopPropagation();  // Tab, Enter on the panel's buttons etc. keep their default action
      return;
    }
    if (event.key !== "g" || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (document.querySelector(".help-overlay.open")) return;
    if (open()) event.preventDefault();
  }

  function onClick(event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.closest("[data-action=toggle-guidelines]")) {
      if (open()) event.preventDefault();
    } else if (target.closest("[data-action=close-guidelines]") || target.classList.contains("guidelines-overlay")) {
      close();
    }
  }

  document.addEventListener("keydown", onKeydown, true);  // capture: before the workspace's keys
  document.addEventListener("click", onClick);
})();
