// What every page's htmx requests need beyond htmx itself.
//
// Failed htmx requests say so. htmx leaves the page as it was when a request fails (a server
// error, a stale CSRF token, no network), which looked like a button that did nothing. The
// message goes to the page's alert region and clears on the next request that succeeds.
(function () {
  "use strict";
  var MESSAGES = {
    403: "This page is out of date (you may have signed in again in another tab). Reload the page and try again.",
    404: "That item no longer exists. Reload the page to see the current state.",
    413: "That upload is too large.",
    429: "Too many requests. Wait a moment and try again."
  };
  var SERVER = "Something went wrong on our side, and nothing was changed. Try again in a moment.";
  var OFFLINE = "The portal could not be reached. Check your connection and try again.";

  function region() { return document.getElementById("request-error"); }
  function show(text) {
    var el = region();
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
  }

  document.addEventListener("htmx:responseError", function (e) {
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    show(MESSAGES[status] || SERVER);
  });
  document.addEventListener("htmx:sendError", function () { show(OFFLINE); });
  document.addEventListener("htmx:afterRequest", function (e) {
    var el = region();
    if (el && !el.hidden && e.detail.successful) el.hidden = true;
  });

  // Keyboard focus survives a swap. A button disabled while its request runs (hx-disabled-elt)
  // loses the focus, and the swap then replaces it, so htmx has nothing to give the focus back
  // to: give it to the element with the same id in the new content.
  // Opening an unread notification marks it read, as in GitHub's inbox: the link still just
  // navigates, and a POST (the page's CSRF token; keepalive, so it outlives the page) records it.
  // Without JavaScript the notification stays unread until "Mark read".
  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a[data-mark-read]") : null;
    if (!link || !window.fetch) return;
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["HX-Request"] = "true";  // answered with the item, not a redirect to a page
    fetch(link.getAttribute("data-mark-read"), { method: "POST", headers: headers, credentials: "same-origin", keepalive: true });
    link.removeAttribute("data-mark-read");
  });

  // A control whose own id is gone after the swap (a "Mark read" button once the notification is
  // read, a deleted row's button) names where the focus goes instead: data-focus-after holds ids,
  // tried in order, and "next-row" (the first control with an id in the next row of its list, or
  // the previous row when it was the last one; a row marked data-part-of-next goes with the row
  // after it, and is not the previous row).
  var CONTROL = "a[href][id], button[id]:not([disabled]), input[id]:not([type=hidden]), select[id], textarea[id]";
  function rowControlId(row, step) {
    for (var r = row && row[step]; r; r = r[step]) {
      if (step === "previousElementSibling" && r.hasAttribute("data-part-of-next")) continue;
      var c = r.matches(CONTROL) ? r : r.querySelector(CONTROL);
      if (c) return c.id;
    }
    return null;
  }
  var focusIds = null, focusXhr = null;
  document.addEventListener("htmx:beforeRequest", function (e) {
    var active = document.activeElement;
    if (!active || active === document.body) return;
    var elt = e.detail.elt;
    // Only the request the focused control made (or its form's): not a poll running meanwhile.
    if (elt && elt !== active && !elt.contains(active) && active.form !== elt) return;
    var ids = active.id ? [active.id] : [];
    (active.getAttribute("data-focus-after") || "").split(/\s+/).forEach(function (token) {
      if (token === "next-row") {
        var row = active.closest("li, tr");
        ids.push(rowControlId(row, "nextElementSibling") || rowControlId(row, "previousElementSibling"));
      } else if (token) {
        ids.push(token);
      }
    });
    focusIds = ids.length ? ids : null;
    focusXhr = e.detail.xhr;
  });
  // After the settle, and also after a request whose swap left nothing to settle (a deleted row:
  // htmx then announces the request's end on an ancestor still in the page, not afterSettle).
  // A response with out-of-band parts settles more than once: the focus may still be on the old
  // control at the first settle and lost at the next, so only the last check lets go of the ids.
  document.addEventListener("htmx:afterSettle", function (e) {
    if (!focusInvalid()) restoreFocus(e.detail.xhr, false);
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var delay = (window.htmx && htmx.config.defaultSettleDelay) || 20;
    var xhr = e.detail.xhr;
    setTimeout(function () { restoreFocus(xhr, false); }, delay + 10);
    setTimeout(function () { restoreFocus(xhr, true); }, delay + 250);  // a slow machine's late settle
  });
  // Each check gives the focus back if it was lost (on <body> or on a removed element); the
  // last one lets go of the ids.
  function restoreFocus(xhr, last) {
    if (!xhr || xhr !== focusXhr) return;  // another request's end (a poll meanwhile)
    var ids = focusIds || [];
    if (last) focusIds = focusXhr = null;
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    for (var i = 0; i < ids.length; i++) {
      var el = ids[i] && document.getElementById(ids[i]);
      if (el) { el.focus({ preventScroll: el.getAttribute("tabindex") !== "-1" }); return; }
    }
  }

  // A form sent with errors: the focus goes to its first invalid field (the error summary above
  // it, role="alert", is announced), after a page load and after a swap that brought the errors.
  var seenInvalid = null;
  function focusInvalid() {
    var field = document.querySelector("[aria-invalid=true]");
    if (!field || field === seenInvalid) return false;
    seenInvalid = field;
    field.focus();
    return true;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", focusInvalid);
  else focusInvalid();

  // Header menus (<details>: the account menu, the bell) close with Escape (the focus goes back
  // to their summary), with a click outside them, and when the focus leaves them.
  function openMenus() { return document.querySelectorAll(".topbar details[open]"); }
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    Array.prototype.forEach.call(openMenus(), function (menu) {
      var active = document.activeElement;
      var inside = !active || active === document.body || menu.contains(active);
      menu.open = false;
      if (inside) menu.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", function (e) {
    Array.prototype.forEach.call(openMenus(), function (menu) {
      if (!menu.contains(e.target)) menu.open = false;
    });
  });
  document.addEventListener("focusin", function (e) {
    Array.prototype.forEach.call(openMenus(), function (menu) {
      if (!menu.contains(e.target)) menu.open = false;
    });
  });

  // Sections that would fill a phone's first screen (the ticket filters) start folded there.
  // Wider screens hide their summary (portal.css), so a folded one opens when the window widens.
  if (window.matchMedia) {
    var phone = window.matchMedia("(max-width: 640px)");
    if (phone.matches) {
      document.querySelectorAll("details[data-fold-on-phone]").forEach(function (d) { d.open = false; });
    }
    if (phone.addEventListener) phone.addEventListener("change", function () {
      if (!phone.matches) document.querySelectorAll(".filters-toggle").forEach(function (d) { d.open = true; });
    });
  }

  // Copy buttons (data-copy="<id of the field>", hidden until this script shows them) say what
  // happened in their status element (aria-describedby, a polite live region).
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var status = document.getElementById(button.getAttribute("aria-describedby") || "");
      function say(text) { if (status) status.textContent = text; }
      function fallback() {
        field.select();
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (err) { copied = false; }
        say(copied ? "Copied to the clipboard." : "The token is selected: copy it with Ctrl+C (⌘+C on a Mac).");
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(function () { say("Copied to the clipboard."); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
