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

  var focusedId = null;
  document.addEventListener("htmx:beforeRequest", function () {
    var active = document.activeElement;
    focusedId = active && active !== document.body && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var id = focusedId;
    focusedId = null;
    if (!id || (document.activeElement && document.activeElement !== document.body)) return;
    var el = document.getElementById(id);
    if (el) el.focus({ preventScroll: true });
  });
})();
