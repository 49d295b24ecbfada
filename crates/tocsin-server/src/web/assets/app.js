// Tocsin's one script. Every page works without it; it adds live updates
// (server-sent events), ticking elapsed times, confirmations and shortcuts.
"use strict";
(function () {
  var body = document.body;
  var scope = body.getAttribute("data-live") || "";

  // A change concerns this page? Scopes: "incidents" (lists, dashboard),
  // "incident:<id>" (one incident room), "alerts", "all".
  function concerns(c) {
    if (scope === "all") return true;
    if (scope === "incidents") return c.entity === "incident" || c.entity === "alert" || c.incident_id !== null;
    if (scope === "alerts") return c.entity === "alert" || c.entity === "silence" || c.entity === "maintenance_window";
    if (scope.indexOf("incident:") === 0) return String(c.incident_id) === scope.slice(9);
    return false;
  }

  // At most one refresh every MIN_GAP ms however busy the log is (an alert
  // storm must not turn every open dashboard into a stream of page loads).
  var MIN_GAP = 1500;
  var pending = null, busy = false, again = false, last = 0, held = false;
  function typing(region) {
    var a = document.activeElement;
    return a && region.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName);
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    last = Date.now();
    fetch(location.href, { headers: { "X-Tocsin-Live": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        // Elapsed times as this page shows them, so only real changes differ.
        ticks(doc);
        document.querySelectorAll("[data-live-region]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (!fresh) return;
          // Never pull a form field out from under someone typing in it: this
          // region waits until they leave it.
          if (typing(old)) { held = true; return; }
          if (old.innerHTML !== fresh.innerHTML) {
            old.replaceWith(fresh);
            fresh.classList.add("flash-new");
          }
        });
        ticks();
        var stamp = document.getElementById("live-status");
        if (stamp) stamp.textContent = "Updated " + new Date().toLocaleTimeString();
      })
      .catch(function () { /* the next change tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() {
    if (pending) return;
    var wait = Math.max(150, last + MIN_GAP - Date.now());
    pending = setTimeout(function () { pending = null; refresh(); }, wait);
  }
  document.addEventListener("focusout", function () {
    if (held) { held = false; schedule(); }
  });

  if (scope && window.EventSource) {
    var es = new EventSource("/live");
    es.addEventListener("change", function (e) {
      try { if (concerns(JSON.parse(e.data))) schedule(); } catch (_) {}
    });
    es.addEventListener("reload", schedule);
    // Catch up on whatever changed between the page being made and the stream
    // opening, and after a dropped connection.
    es.addEventListener("open", function () { body.setAttribute("data-live-seen", ""); schedule(); });
  }

  // Elapsed times: <time data-since="2026-11-24T10:00:00Z">.
  function fmt(s) {
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) { var m = Math.floor((s % 3600) / 60); return Math.floor(s / 3600) + "h " + (m < 10 ? "0" : "") + m + "m"; }
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function ticks(root) {
    (root || document).querySelectorAll("time[data-since]").forEach(function (t) {
      var since = Date.parse(t.getAttribute("data-since"));
      if (!isNaN(since)) t.textContent = fmt(Math.max(0, Math.floor((Date.now() - since) / 1000)));
    });
  }
  setInterval(function () { ticks(); }, 15000);

  // <form data-confirm="Resolve INC-4?">
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Shortcuts: "/" search, "n" declare, "g" then d/i/a/s/o for the sections.
  var g = false;
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)))) return;
    if (e.key === "/") { var q = document.querySelector("input[type=search]"); if (q) { e.preventDefault(); q.focus(); } return; }
    if (g) {
      g = false;
      var to = { d: "/", i: "/incidents", a: "/alerts", s: "/services", o: "/oncall", p: "/people" }[e.key];
      if (to) location.href = to;
      return;
    }
    if (e.key === "g") { g = true; setTimeout(function () { g = false; }, 1200); return; }
    if (e.key === "n" && document.querySelector("a[href='/incidents/new']")) location.href = "/incidents/new";
  });

  // A calendar range picked by dragging across days fills the override form.
  document.querySelectorAll("[data-range-pick]").forEach(function (cal) {
    var form = document.getElementById(cal.getAttribute("data-range-pick"));
    if (!form) return;
    var start = null;
    cal.addEventListener("mousedown", function (e) {
      var cell = e.target.closest("[data-at]");
      if (cell) { start = cell.getAttribute("data-at"); e.preventDefault(); }
    });
    cal.addEventListener("mouseup", function (e) {
      var cell = e.target.closest("[data-at]");
      if (!cell || !start) return;
      var end = cell.getAttribute("data-end") || cell.getAttribute("data-at");
      var a = start < end ? start : end, b = start < end ? end : start;
      if (b === a) b = cell.getAttribute("data-end") || b;
      var s = form.querySelector("[name=starts_at]"), f = form.querySelector("[name=ends_at]");
      if (s) s.value = a; if (f) f.value = b;
      var u = form.querySelector("[name=user_id]"); if (u) u.focus();
      start = null;
    });
  });

  ticks();
})();
