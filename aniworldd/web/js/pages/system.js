/*
 * The system page. GET /api/system/status: version, uptime, queue and disk in one line, the free
 * space of each library root and of the data and temp dirs, and the hoster health table (per hoster: state,
 * tries, successes, 24 h success rate, last error and when), so a hoster that keeps failing is visible
 * before the user wonders why downloads are slow.
 *
 * The last 200 log lines (GET /api/system/logs) follow live: while the page is shown it asks every few
 * seconds for the lines after the newest one it has (`?after=`), which is one tiny request when nothing
 * happened. Polling, not a WebSocket room: the log is admin-only and the WebSocket rooms have no per-room
 * permission, and putting log records on the event bus would feed back into itself (every publish can log).
 */
import { api } from "../core/api.js";
import { $, $all, clear, h, markReady } from "../core/dom.js";
import { fmt } from "../core/format.js";
import { setBusy } from "../core/notify.js";
import { registerView } from "../core/router.js";
import { init as initDoctor } from "./doctor.js";

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
  if (st.python) parts.push("Python " + st.python);
  return parts.join(" · "); // free space: the table below
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
  renderStorage(st);
  var body = clear($("#hoster-health tbody"));
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

// ---------------------------------------------------------------- free space

var ROLES = { data: "Data dir", temp: "Download temp dir" };

function storageRow(kind, path, d) {
  var cells = [h("th", { scope: "row", text: kind }), h("td", { class: "small text-break", text: path })];
  if (d.free_bytes === null || d.free_bytes === undefined) {
    cells.push(h("td", { colspan: 2, class: "text-danger small", text: d.error || "unavailable" }));
  } else {
    var used = d.total_bytes ? Math.round(100 * (d.total_bytes - d.free_bytes) / d.total_bytes) : 0;
    cells.push(h("td", { class: "text-end text-nowrap", text: fmt.bytes(d.free_bytes) }));
    cells.push(h("td", { class: "storage-bar" },
      h("div", { class: "progress", role: "progressbar", "aria-label": used + " % used",
        "aria-valuenow": used, "aria-valuemin": 0, "aria-valuemax": 100,
        title: used + " % of " + fmt.bytes(d.total_bytes) + " used" },
        h("div", { class: "progress-bar " + (used >= 95 ? "bg-danger" : used >= 85 ? "bg-warning" : ""),
          dataset: { width: used } }))));
  }
  var note = d.exists === false ? h("span", { class: "badge text-bg-warning ms-1", text: "not there yet" }) : null;
  if (note) cells[1].appendChild(note);
  return h("tr", { dataset: { storage: kind } }, cells);
}

function renderStorage(st) {
  var body = clear($("#system-storage tbody"));
  (st.library || []).forEach(function (d) { body.appendChild(storageRow("Library", d.root, d)); });
  (st.storage || []).forEach(function (d) { body.appendChild(storageRow(ROLES[d.role] || d.role, d.path, d)); });
  // Widths through the CSSOM: the CSP forbids inline style attributes, not element.style.
  $all("#system-storage .progress-bar[data-width]").forEach(function (bar) {
    bar.style.width = bar.dataset.width + "%";
  });
}

// ---------------------------------------------------------------- live log tail

var LOG_POLL_MS = 3000;
var LOG_MAX = 200;
var logs = { after: 0, timer: null, visible: false, busy: false };
var LEVELS = { WARNING: "text-warning-emphasis", ERROR: "text-danger", CRITICAL: "text-danger fw-bold", DEBUG: "text-body-secondary" };

function logLine(line) {
  var at = new Date(line.at);
  return h("li", { class: "log-line " + (LEVELS[line.level] || ""), dataset: { seq: line.seq, level: line.level } },
    h("span", { class: "log-time", text: isNaN(at.getTime()) ? "" : at.toLocaleTimeString() }), " ",
    h("span", { class: "log-level", text: line.level }), " ",
    h("span", { class: "log-logger", text: line.logger }), " ",
    h("span", { class: "log-message", text: line.message }));
}

function appendLogs(data) {
  var box = $("#system-logs");
  if (data.last < logs.after) { // the daemon restarted: its numbering begins again
    clear(box);
    logs.after = 0;
    return pollLogs(true);
  }
  var follow = $("#system-logs-follow").checked;
  data.lines.forEach(function (line) { box.appendChild(logLine(line)); });
  while (box.children.length > LOG_MAX) box.removeChild(box.firstChild);
  logs.after = data.last;
  $("#system-logs-empty").hidden = box.children.length > 0;
  if (follow && data.lines.length) box.scrollTop = box.scrollHeight;
  if (data.lines.length) box.setAttribute("data-last", String(data.last));
  return null;
}

function schedule() {
  clearTimeout(logs.timer);
  if (logs.visible) logs.timer = setTimeout(function () { pollLogs(false); }, LOG_POLL_MS);
}

function pollLogs(force) {
  if (!logs.visible || logs.busy) return Promise.resolve();
  if (!force && document.hidden) { // a background tab asks nothing; it catches up when shown
    schedule();
    return Promise.resolve();
  }
  logs.busy = true;
  var err = $("#system-logs-error");
  return api("GET", "/api/system/logs?after=" + logs.after).then(function (data) {
    err.hidden = true;
    logs.busy = false;
    return appendLogs(data);
  }).catch(function (e) {
    logs.busy = false;
    if (e.status === 401) return;
    err.textContent = "Loading the log failed: " + e.message;
    err.hidden = false;
  }).then(schedule);
}

function load() {
  var err = $("#system-error");
  return api("GET", "/api/system/status").then(function (st) {
    err.hidden = true;
    render(st);
    markReady("system");
  }).catch(function (e) {
    if (e.status === 401) return;
    err.textContent = "Loading the system status failed: " + e.message;
    err.hidden = false;
  });
}

var view = {
  title: function () { return "System"; },
  show: function () {
    logs.visible = true;
    pollLogs(true);
    return load();
  },
  hide: function () {
    logs.visible = false;
    clearTimeout(logs.timer);
  },
};

export function init() {
  registerView("system", view);
  initDoctor(); // the "Run doctor" button is part of this page
  $("#system-refresh").addEventListener("click", function (ev) {
    var button = ev.currentTarget;
    setBusy(button, true);
    load().then(function () { setBusy(button, false); });
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && logs.visible) pollLogs(true);
  });
}
