// Live SLA countdowns: every element with data-due shows time left (or overdue) and turns
// "at risk"/"breached" without a reload. The server's text is the no-JavaScript fallback.
(function () {
  "use strict";
  function human(ms) {
    var minutes = Math.round(Math.abs(ms) / 60000);
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " days " + (hours % 24) + " h";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (badge) {
      var due = Date.parse(badge.getAttribute("data-due"));
      var out = badge.querySelector(".sla-countdown");
      if (isNaN(due) || !out) return;
      var target = out.textContent.split(" ")[0] === "first" ? "first response" : "resolution";
      var left = due - now;
      if (left <= 0) {
        out.textContent = target + " overdue by " + human(left);
        badge.classList.remove("sla-on_track", "sla-at_risk");
        badge.classList.add("sla-breached");
        badge.querySelector(".sla-label").textContent = "SLA breached";
      } else {
        out.textContent = target + " due in " + human(left);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
  setInterval(tick, 30000);
})();
