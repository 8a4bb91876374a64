/*
 * system.js: the system page. GET /api/system/status: version, uptime, queue and disk in one line, and the
 * hoster health table (per hoster: state, tries, successes, 24 h success rate, last error and when), so a
 * hoster that keeps failing is visible before the user wonders why downloads are slow.
 */
(function (global) {
  "use strict";

  var App = global.App;
  var h = App.h;
  var $ = App.$;
  var fmt = App.fmt;

  var STATES = {
    ok: { label: "OK", cls: "text-bg-success" },
    failing: { label: "Failing", cls: "text-bg-warning" },
    cooling_down: { label: "Cooling down", cls: "text-bg-danger" },
    unknown: { label: "Not tried", cls: "text-bg-secondary" },
  };

  function fmtUptime(seconds) {
    seconds = Math.max(0, Math.round(Number(seconds) || 0));
    var d = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    return (d ? d + " d " : "") + (d || hours ? hours + " h " : "") + m + " min";
  }

  function summary(st) {
    var q = st.queue || {};
    var parts = ["aniworldd " + st.version, "up " + fmtUptime(st.uptime_s)];
    if (q.pending !== undefined) parts.push(q.active + " downloading, " + q.pending + " waiting, " + q.failed + " failed");
    (st.library || []).forEach(function (d) {
      if (d.free_bytes !== null && d.free_bytes !== undefined) parts.push(fmt.bytes(d.free_bytes) + " free in " + d.root);
    });
    return parts.join(" · ");
  }

  function rateText(rate) {
    return rate === null || rate === undefined ? "–" : Math.round(rate * 100) + " %";
  }

  function row(name, e) {
    var state = STATES[e.state] || { label: e.state || "?", cls: "text-bg-secondary" };
    var stateCell = h("td", null, h("span", { class: "badge " + state.cls, text: state.label }));
    if (e.cooling_down_until) {
      stateCell.appendChild(h("div", { class: "small text-body-secondary", text: "until " + fmt.date(e.cooling_down_until) }));
    }
    var errorCell = h("td", { class: "small text-break" });
    if (e.last_error) {
      errorCell.appendChild(h("div", { text: e.last_error }));
      errorCell.appendChild(h("div", { class: "text-body-secondary", text: fmt.date(e.last_error_at) }));
    } else {
      errorCell.appendChild(h("span", { class: "text-body-secondary", text: "none" }));
    }
    return h("tr", { dataset: { hoster: name, state: e.state || "" } },
      h("th", { scope: "row", text: name }),
      stateCell,
      h("td", { class: "text-end", text: String(e.attempts || 0) }),
      h("td", { class: "text-end", text: String(e.successes || 0) }),
      h("td", { class: "text-end", text: rateText(e.success_rate_24h),
        title: e.attempts_24h ? e.attempts_24h + " tries in the last 24 h" : null }),
      errorCell);
  }

  function render(st) {
    $("#system-summary").textContent = summary(st);
    var body = App.clear($("#hoster-health tbody"));
    var hosters = st.hosters || {};
    if (hosters.error) {
      body.appendChild(h("tr", null, h("td", { colspan: 6, class: "text-danger", text: hosters.error })));
      return;
    }
    var names = Object.keys(hosters);
    if (!names.length) {
      body.appendChild(h("tr", null, h("td", { colspan: 6, class: "text-body-secondary", text: "No hoster tried yet." })));
      return;
    }
    names.forEach(function (name) { body.appendChild(row(name, hosters[name])); });
  }

  function load() {
    var err = $("#system-error");
    return App.api("GET", "/api/system/status").then(function (st) {
      err.hidden = true;
      render(st);
      App.markReady("system");
    }).catch(function (e) {
      if (e.status === 401) return;
      err.textContent = "Loading the system status failed: " + e.message;
      err.hidden = false;
    });
  }

  App.views.system = {
    title: function () { return "System"; },
    show: load,
  };

  App.extraInits.system = function () {
    $("#system-refresh").addEventListener("click", function (ev) {
      var button = ev.currentTarget;
      App.setBusy(button, true);
      load().then(function () { App.setBusy(button, false); });
    });
  };
})(window);
