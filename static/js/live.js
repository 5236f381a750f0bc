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

  var MAX_TRIES = 10, SILENCE_MS = 60000, POLL_MS = 30000, BASE_MS = 500, CAP_MS = 30000, EAGER_GAP_MS = 5000;
  var CONNECTING = 0, OPEN = 1;
  var lastId = 0, tries = 0, lastMessageAt = Date.now(), stopped = false, pollTimer = null;
  var seen = new Set(), seenOrder = [];
  // The extension's socket wrapper, its own init (which opens a socket), our pending retry and
  // when the last socket was started.
  var wrapper = null, openSocket = null, retryTimer = null, lastAttemptAt = 0;

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
    lastAttemptAt = Date.now();
    return new WebSocket(url + sep + "last_id=" + lastId);
  };
  function backoff(attempt) {
    var exp = Math.min(CAP_MS, BASE_MS * Math.pow(2, Math.min(attempt, 10)));
    return Math.random() * exp;  // full jitter
  }
  // Only the delay of the extension's own retry timer, which lands in scheduleReconnect() (see
  // adopt()): that timer can't be cancelled, so it never opens a socket itself.
  htmx.config.wsReconnectDelay = backoff;

  // One reconnect path. The extension opens a new socket on every init() without cancelling its
  // pending retry or closing a socket still connecting, so each extra call (watchdog, online,
  // visibilitychange, its own retry timer) used to start another retry chain: attempts grew during
  // an outage and a tab could end up holding several open sockets. Every trigger goes through
  // here: at most one retry is pending, and no socket is opened while one is connecting or open.
  function adopt() {
    var data = live["htmx-internal-data"];
    var current = data && data.webSocket;
    if (!current || current === wrapper) return;
    wrapper = current;
    openSocket = wrapper.init;
    wrapper.init = function () { scheduleReconnect(); };  // the extension's retry timer
  }
  function socketState() {
    var socket = wrapper && wrapper.socket;
    return socket ? socket.readyState : WebSocket.CLOSED;
  }
  function busy() {
    var state = socketState();
    return state === CONNECTING || state === OPEN;
  }
  function scheduleReconnect() {
    if (stopped || !wrapper || retryTimer !== null || busy()) return;
    var delay = backoff(tries);
    tries += 1;
    if (tries >= MAX_TRIES) startPolling();
    retryTimer = setTimeout(function () { retryTimer = null; connectNow(); }, delay);
  }
  function connectNow() {
    if (stopped || !wrapper) return;
    if (retryTimer !== null) { clearTimeout(retryTimer); retryTimer = null; }
    if (socketState() === CONNECTING) return;
    openSocket.call(wrapper);  // closes the current socket if it is open, then opens one
  }
  function isCurrent(event) {
    return !event || !event.target || !wrapper || event.target === wrapper.socket;
  }

  live.addEventListener("htmx:wsOpen", function (e) {
    adopt();
    if (!isCurrent(e.detail.event)) return;
    tries = 0; lastMessageAt = Date.now(); stopPolling();
    var root = document.documentElement;
    root.setAttribute("data-live", "open");
    root.setAttribute("data-live-opens", String(parseInt(root.getAttribute("data-live-opens") || "0", 10) + 1));
  });
  live.addEventListener("htmx:wsClose", function (e) {
    adopt();
    var event = e.detail.event;
    if (!isCurrent(event)) return;  // a socket we replaced: its late close changes nothing
    document.documentElement.setAttribute("data-live", "closed");
    var code = event.code;
    if (code === 4401 || code === 4001) {
      stopped = true; stopPolling();
      if (retryTimer !== null) { clearTimeout(retryTimer); retryTimer = null; }
      return;
    }
    if ([1000, 1001, 1006, 1011, 1012, 1013].indexOf(code) >= 0) scheduleReconnect();
  });
  live.addEventListener("htmx:wsBeforeMessage", function (e) {
    lastMessageAt = Date.now();
    var text = e.detail.message;
    e.preventDefault();  // swapped here, not by the extension (see swapLive)
    if (text.charAt(0) === "{") return;  // ping/pong and control frames
    applyPushes(text);
  });

  // A socket frame is one push after its cursor (<span id="live-cursor" data-live-id="N">); a
  // poll answer is a run of them. Each push is applied once, in order.
  var CURSOR = /<span id="live-cursor"[^>]*data-live-id="(\d+)"[^>]*><\/span>/g;
  function applyPushes(text) {
    var marks = [], match;
    CURSOR.lastIndex = 0;
    while ((match = CURSOR.exec(text)) !== null) marks.push({ id: parseInt(match[1], 10), at: match.index });
    if (!marks.length) { swapLive(text, 0); return; }
    if (marks[0].at > 0) swapLive(text.slice(0, marks[0].at), 0);
    marks.forEach(function (mark, i) {
      var part = text.slice(mark.at, i + 1 < marks.length ? marks[i + 1].at : text.length);
      if (seen.has(mark.id)) return;
      remember(mark.id);
      swapLive(part, mark.id);
    });
  }

  // A push carries its fragments for every page (badge, dropdown, list row, ticket status,
  // thread, dashboard...): swap those this page has, with htmx's own out-of-band swap. The ws
  // extension's swap would not do: it treats each top-level element as the fragment, so a table
  // row, which the server wraps in <template> (outside a table the HTML parser drops <tr>), never
  // reached the ticket list, and each fragment for another page logged an error.
  function swapLive(text, pushId) {
    var holder = document.createElement("template");
    holder.innerHTML = text;
    var content = holder.content;
    Array.prototype.slice.call(content.querySelectorAll("template")).forEach(function (t) {
      pruneMissing(t.content, pushId);
      if (!t.content.children.length) t.remove();
    });
    pruneMissing(content, pushId);
    if (content.children.length) htmx.swap(live, content, { swapStyle: "none" });
  }
  function oobTarget(elt) {
    var spec = elt.getAttribute("hx-swap-oob") || "true";
    var colon = spec.indexOf(":");
    var selector = colon >= 0 ? spec.slice(colon + 1) : "#" + elt.id;
    try { return selector === "#" ? null : document.querySelector(selector); } catch (err) { return null; }
  }
  function pruneMissing(fragment, pushId) {
    Array.prototype.slice.call(fragment.children).forEach(function (elt) {
      if (elt.tagName === "TEMPLATE") return;
      var target = oobTarget(elt);
      if (!target || isStale(elt, target, pushId)) elt.remove();
    });
  }
  // Whole-state fragments (the badge, the dropdown) carry data-push-id: the push they were
  // rendered for, or, on the page, the page's cursor. The server replays a few seconds before
  // the cursor (commits can land out of order), so a replayed badge may be older than the page:
  // it is dropped, never swapped over newer state.
  function isStale(elt, target, pushId) {
    if (!elt.hasAttribute("data-push-id")) return false;
    var incoming = parseInt(elt.getAttribute("data-push-id"), 10) || pushId;
    var shown = parseInt(target.getAttribute("data-push-id"), 10) || 0;
    if (incoming && incoming < shown) return true;
    if (incoming) {
      elt.setAttribute("data-push-id", String(incoming));
      target.setAttribute("data-push-id", String(incoming));  // kept by a swap of its contents
    }
    return false;
  }

  setInterval(function () {
    if (stopped || !wrapper || Date.now() - lastMessageAt <= SILENCE_MS) return;
    lastMessageAt = Date.now();
    if (socketState() === OPEN) connectNow();  // silent: replace it (the open one is closed first)
    else if (socketState() === CONNECTING) wrapper.socket.close();  // stuck: its close retries
    else scheduleReconnect();
  }, 10000);
  // Back online, or the user is looking again: try now rather than at the end of a long backoff,
  // but never while a socket is connecting or open, nor more than once per EAGER_GAP_MS.
  function reconnectEagerly() {
    if (stopped || !wrapper || busy()) return;
    if (Date.now() - lastAttemptAt < EAGER_GAP_MS) { scheduleReconnect(); return; }
    connectNow();
  }
  window.addEventListener("online", reconnectEagerly);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectEagerly();
  });

  // Out-of-band insertions (appends such as a reply added to its thread, or a new row) never add
  // an element whose id is already on the page: a live push of the same reply can swap the whole
  // thread in before the reply's own response arrives. Whole-element swaps (outerHTML) replace
  // by id and are left alone.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var fragment = e.detail.fragment;
    if (!fragment || fragment.nodeType !== 1) return;  // an element's children, not a whole element
    var skipped = 0;
    Array.prototype.slice.call(fragment.children).forEach(function (child) {
      if (child.id && document.getElementById(child.id)) { fragment.removeChild(child); skipped += 1; }
    });
    // Only when everything it inserts is already here: a "delete" swap or new text has no
    // elements to begin with, and must still happen.
    if (skipped && !fragment.children.length) e.detail.shouldSwap = false;
  });

  // Polling fallback: the same pushes, from the database, every 30 s (304 when nothing new).
  function poll() {
    if (stopped) return;
    htmx.ajax("GET", live.getAttribute("data-poll-url") + "?last_id=" + lastId, {
      source: live,
      handler: function (elt, info) { if (info.xhr.status === 200) applyPushes(info.xhr.responseText); },
    }).then(readCursor);
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
