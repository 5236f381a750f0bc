// Live updates over one WebSocket, swapped in by the htmx ws extension.
//
// What this file adds to the extension: resume from the last message id after any reconnect,
// exponential backoff with full jitter (10 tries, then polling every 30 s while it keeps
// trying slowly), reconnects on normal closes too and when the browser comes back online or
// the tab becomes visible, a watchdog that reconnects after 60 s without any message (the
// server pings every ~25 s), and de-duplication of replayed messages. Close code 4401
// (not signed in) and 4001 (signed out) stop all retries.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.htmx) return;

  var MAX_TRIES = 10, SILENCE_MS = 60000, POLL_MS = 30000, BASE_MS = 500, CAP_MS = 30000;
  var lastId = 0, tries = 0, lastMessageAt = Date.now(), stopped = false, pollTimer = null, wrapper = null;
  var seen = new Set(), seenOrder = [];

  function remember(id) {
    seen.add(id); seenOrder.push(id);
    if (seenOrder.length > 2000) seen.delete(seenOrder.shift());
    if (id > lastId) lastId = id;
    live.setAttribute("data-last-id", String(lastId));
  }

  // The page was rendered at this point of the stream: resume from it, so nothing pushed
  // between rendering and connecting is lost.
  readCursor();

  htmx.createWebSocket = function (url) {
    var sep = url.indexOf("?") >= 0 ? "&" : "?";
    return new WebSocket(url + sep + "last_id=" + lastId);
  };
  htmx.config.wsReconnectDelay = function (retryCount) {
    tries = retryCount + 1;
    if (tries >= MAX_TRIES) startPolling();
    var exp = Math.min(CAP_MS, BASE_MS * Math.pow(2, Math.min(retryCount, 10)));
    return Math.random() * exp;  // full jitter
  };

  function reconnectSoon() {
    if (stopped || !wrapper) return;
    setTimeout(function () { if (!isOpen()) wrapper.reconnect(); }, htmx.config.wsReconnectDelay(tries));
  }
  function isOpen() {
    var ws = live["htmx-internal-data"] && live["htmx-internal-data"].webSocket;
    return ws && ws.socket && ws.socket.readyState === WebSocket.OPEN;
  }

  live.addEventListener("htmx:wsOpen", function (e) {
    wrapper = e.detail.socketWrapper; tries = 0; lastMessageAt = Date.now(); stopPolling();
    var root = document.documentElement;
    root.setAttribute("data-live", "open");
    root.setAttribute("data-live-opens", String(parseInt(root.getAttribute("data-live-opens") || "0", 10) + 1));
  });
  live.addEventListener("htmx:wsClose", function (e) {
    wrapper = e.detail.socketWrapper;
    var code = e.detail.event.code;
    document.documentElement.setAttribute("data-live", "closed");
    if (code === 4401 || code === 4001) { stopped = true; stopPolling(); return; }
    // The extension itself retries 1006/1011/1012/1013; normal closes are ours to retry.
    if (code === 1000 || code === 1001) reconnectSoon();
  });
  live.addEventListener("htmx:wsBeforeMessage", function (e) {
    lastMessageAt = Date.now();
    var text = e.detail.message;
    e.preventDefault();  // swapped here, not by the extension (see swapLive)
    if (text.charAt(0) === "{") return;  // ping/pong and control frames
    var match = /data-live-id="(\d+)"/.exec(text);
    if (match) {
      var id = parseInt(match[1], 10);
      if (seen.has(id)) return;
      remember(id);
    }
    swapLive(text);
  });

  // A push carries its fragments for every page (badge, dropdown, list row, ticket status,
  // thread, dashboard...): swap those this page has, with htmx's own out-of-band swap. The ws
  // extension's swap would not do: it treats each top-level element as the fragment, so a table
  // row, which the server wraps in <template> (outside a table the HTML parser drops <tr>), never
  // reached the ticket list, and each fragment for another page logged an error.
  function swapLive(text) {
    var holder = document.createElement("template");
    holder.innerHTML = text;
    var content = holder.content;
    Array.prototype.slice.call(content.querySelectorAll("template")).forEach(function (t) {
      pruneMissing(t.content);
      if (!t.content.children.length) t.remove();
    });
    pruneMissing(content);
    if (content.children.length) htmx.swap(live, content, { swapStyle: "none" });
  }
  function pruneMissing(fragment) {
    Array.prototype.slice.call(fragment.children).forEach(function (elt) {
      if (elt.tagName === "TEMPLATE") return;
      var spec = elt.getAttribute("hx-swap-oob") || "true";
      var colon = spec.indexOf(":");
      var selector = colon >= 0 ? spec.slice(colon + 1) : "#" + elt.id;
      var target = null;
      try { target = selector === "#" ? null : document.querySelector(selector); } catch (err) { target = null; }
      if (!target) elt.remove();
    });
  }

  setInterval(function () {
    if (!stopped && wrapper && Date.now() - lastMessageAt > SILENCE_MS) {
      lastMessageAt = Date.now();
      wrapper.reconnect();
    }
  }, 10000);
  window.addEventListener("online", function () { if (!isOpen() && wrapper) wrapper.reconnect(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !isOpen() && wrapper && !stopped) wrapper.reconnect();
  });

  // Out-of-band insertions (appends such as a reply added to its thread, or a new row) never add
  // an element whose id is already on the page: a live push of the same reply can swap the whole
  // thread in before the reply's own response arrives. Whole-element swaps (outerHTML) replace
  // by id and are left alone.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var fragment = e.detail.fragment;
    if (!fragment || fragment.nodeType !== 1) return;  // an element's children, not a whole element
    Array.prototype.slice.call(fragment.children).forEach(function (child) {
      if (child.id && document.getElementById(child.id)) fragment.removeChild(child);
    });
    if (!fragment.children.length) e.detail.shouldSwap = false;
  });

  // Polling fallback: the same fragments, from the database, every 30 s (304 when nothing new).
  function poll() {
    if (stopped) return;
    htmx.ajax("GET", live.getAttribute("data-poll-url") + "?last_id=" + lastId, { source: live, target: live, swap: "none" })
      .then(readCursor);
  }
  function readCursor() {
    var cursor = document.getElementById("live-cursor");
    var id = cursor ? parseInt(cursor.getAttribute("data-live-id") || "0", 10) : 0;
    if (id > lastId) remember(id);
  }
  function startPolling() { if (!pollTimer) { poll(); pollTimer = setInterval(poll, POLL_MS); } }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }
  if (!("WebSocket" in window)) startPolling();
})();
