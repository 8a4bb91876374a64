/*
 * The download queue page. GET /api/queue/status for the full picture, then the WebSocket keeps
 * it live: `queue_status` re-renders the lists, `download_progress` moves one bar in place (no re-render,
 * so keyboard focus and screen-reader position survive twice-a-second updates).
 *
 * A list without items is hidden with its heading; completed downloads are one line each, in a section
 * that starts collapsed when it is long. Finished downloads are told once per series and batch
 * ("Downloaded 12 episodes of …"), on every page: a series' download_complete events are gathered while
 * more of its episodes wait or download in a running queue (as the last queue_status says), then told
 * BATCH_WINDOW ms after the last one (or when the queue is paused or stopped); BATCH_QUIET_MAX is only a
 * safety net. A batch toast still on screen counts on instead of stacking a new one.
 */
import { api } from "../core/api.js";
import { $, clear, h, markReady } from "../core/dom.js";
import { fmt, languageBadge } from "../core/format.js";
import { announce, confirmDialog, setBusy, showError, toast } from "../core/notify.js";
import { registerView } from "../core/router.js";
import { bus, currentSocket, updateQueueBadge } from "../core/socket.js";

// Per list; the rest is summarised. The server already sends only the first page of each list (50 active and
// pending, 20 completed and failed) with `<list>_total`, so a queue of thousands stays a small message.
var MAX_ROWS = 200;
// More completed rows than this: the section starts collapsed (until the user opens it).
var COMPLETED_OPEN_MAX = 5;
var BATCH_WINDOW = 1200; // ms after a series' last queued episode finished
var BATCH_QUIET_MAX = 600000; // ms after a completion while more of the series are still queued

var state = {
  status: null,
  visible: false,
  live: {}, // download_id -> latest download_progress payload
  announced: {}, // download_id -> last announced quarter
  refreshTimer: null,
  lastFetch: 0,
  completedOpen: null, // per visit: decided by the list's length when it first shows, then the user's choice
  batches: {}, // key -> {count, name, last, timer, long, toast}
  finished: {}, // download_id -> true: completed or failed, though a stale status may still list it
};

function itemProgress(it) {
  var p = it.progress;
  var o = p && typeof p === "object" ? p : {};
  var percent = typeof p === "number" ? p : o.percent;
  var live = state.live[it.id];
  var res = {
    percent: Number(percent) || 0,
    downloaded: it.downloaded_bytes !== undefined ? it.downloaded_bytes : o.downloaded_bytes,
    total: it.total_bytes !== undefined ? it.total_bytes : o.total_bytes,
    // DownloadItem.speed is bytes/s; progress events and statistics use speed_mbps (MiB/s).
    speed: it.speed_mbps !== undefined ? it.speed_mbps
      : typeof it.speed === "number" ? it.speed / 1048576 : o.speed_mbps,
    eta: it.eta_seconds !== undefined ? it.eta_seconds : it.eta !== undefined ? it.eta : o.eta_seconds,
  };
  if (live && live.percent >= res.percent) {
    res = {
      percent: live.percent,
      downloaded: live.downloaded_bytes,
      total: live.total_bytes,
      speed: live.speed_mbps,
      eta: live.eta_seconds,
    };
  }
  if (it.status === "completed") res.percent = 100;
  res.percent = Math.max(0, Math.min(100, res.percent));
  return res;
}

function itemTitle(it) {
  return (it.serie_name || it.serie_folder || it.key || it.serie_id) + " · " + fmt.episode(it.season, it.episode);
}

function seriesLink(it) {
  return h("a", { class: "fw-semibold text-decoration-none", href: "#/series/" + encodeURIComponent(it.key || it.serie_id),
    text: itemTitle(it) });
}

function episodeTitle(it) {
  return it.episode_title ? h("span", { class: "queue-ep-title", text: it.episode_title }) : null;
}

function progressText(p) {
  return [
    Math.floor(p.percent) + " %",
    fmt.speed(p.speed),
    fmt.eta(p.eta) ? "ETA " + fmt.eta(p.eta) : "",
    p.total ? fmt.bytes(p.downloaded || 0) + " of " + fmt.bytes(p.total) : "",
  ].filter(Boolean).join(" · ");
}

function progressValueText(p) {
  var parts = [Math.floor(p.percent) + " percent"];
  if (p.speed) parts.push(fmt.speed(p.speed));
  if (p.eta) parts.push(Math.round(p.eta) + " seconds left");
  return parts.join(", ");
}

function progressBar(it, p, extraClass) {
  var bar = h("div", { class: "progress-bar " + (extraClass || "") });
  bar.style.width = p.percent + "%";
  return h("div", {
    class: "progress queue-progress",
    role: "progressbar",
    "aria-label": "Progress of " + itemTitle(it),
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": String(Math.floor(p.percent)),
    "aria-valuetext": progressValueText(p),
  }, bar);
}

var PRIORITY_CLASS = { high: "text-bg-danger", normal: "text-bg-secondary", low: "text-bg-light border" };
var PRIORITIES = ["high", "normal", "low"];

/** A native select (keyboard and screen reader friendly) for a waiting item's priority. */
function prioritySelect(it) {
  var current = it.priority || "normal";
  return h("select", {
    class: "form-select form-select-sm w-auto queue-priority",
    dataset: { priority: it.id, current: current },
    "aria-label": "Priority of " + itemTitle(it),
  }, PRIORITIES.map(function (name) {
    return h("option", { value: name, selected: name === current, text: name });
  }));
}

/** A completed download in one line: series · episode, its title, size and time, a remove button. */
function completedRow(it) {
  var when = it.completed_at || it.updated_at;
  return h("div", { class: "list-group-item queue-item queue-line", dataset: { itemId: it.id, status: it.status || "completed" } },
    h("span", { class: "queue-line-title", title: [itemTitle(it), it.episode_title].filter(Boolean).join(" · ") },
      seriesLink(it), it.episode_title ? " · " : "", episodeTitle(it)),
    h("span", { class: "queue-line-meta small text-body-secondary" },
      it.total_bytes ? fmt.bytes(it.total_bytes) : "",
      when ? h("span", { class: "queue-line-when", text: (it.total_bytes ? " · " : "") + fmt.date(when) }) : null),
    h("button", { type: "button", class: "btn btn-sm btn-outline-danger py-0", dataset: { remove: it.id, kind: "completed" },
      "aria-label": "Remove " + itemTitle(it), text: "Remove" }));
}

function itemRow(it, kind) {
  if (kind === "completed") return completedRow(it);
  var p = itemProgress(it);
  var buttons = [];
  if (kind === "pending") buttons.push(prioritySelect(it));
  if (kind === "failed") {
    buttons.push(h("button", { type: "button", class: "btn btn-sm btn-outline-primary", dataset: { retry: it.id },
      "aria-label": "Retry " + itemTitle(it), text: "Retry" }));
  }
  buttons.push(h("button", {
    type: "button",
    class: "btn btn-sm btn-outline-danger",
    dataset: { remove: it.id, kind: kind },
    "aria-label": (kind === "active" ? "Cancel " : "Remove ") + itemTitle(it),
    text: kind === "active" ? "Cancel" : "Remove",
  }));
  var head = h("div", { class: "d-flex flex-wrap align-items-center gap-2" },
    h("div", { class: "flex-grow-1 min-w-0" },
      seriesLink(it),
      it.episode_title ? " · " : "",
      episodeTitle(it),
      " ",
      it.language ? languageBadge(it.language) : null,
      " ",
      it.priority && it.priority !== "normal"
        ? h("span", { class: "badge " + (PRIORITY_CLASS[it.priority] || "text-bg-secondary"), text: it.priority + " priority" })
        : null),
    h("div", { class: "d-flex align-items-center gap-2" },
      kind === "pending" ? buttons[0] : null,
      h("div", { class: "btn-group btn-group-sm" }, kind === "pending" ? buttons.slice(1) : buttons)));
  var body = [];
  if (kind === "active") {
    body.push(progressBar(it, p, "progress-bar-striped progress-bar-animated"));
    body.push(h("div", { class: "small text-body-secondary mt-1 progress-text", text: progressText(p) }));
  } else if (kind === "failed") {
    body.push(h("div", { class: "small text-danger-emphasis mt-1 text-break",
      text: (it.error || "failed") + (it.attempts ? " (attempts: " + it.attempts + ")" : "") }));
  } else {
    body.push(h("div", { class: "small text-body-secondary", text: "Waiting" +
      (it.attempts ? " · retry " + it.attempts : "") + (it.error ? " · last error: " + it.error : "") }));
  }
  return h("div", { class: "list-group-item queue-item", dataset: { itemId: it.id, status: it.status || kind } }, head, body);
}

/**
 * `total`: how many items the whole list has (`<list>_total`); the status holds only its first page.
 * An empty list is hidden with its heading (its <section>); answers whether it has items.
 */
function renderList(el, items, kind, total) {
  clear(el);
  var count = Math.max(items.length, Number(total) || 0);
  el.closest("section").hidden = !count;
  if (!count) return false;
  var frag = document.createDocumentFragment();
  var shown = items.slice(0, MAX_ROWS);
  shown.forEach(function (it) { frag.appendChild(itemRow(it, kind)); });
  var more = Math.max(items.length, Number(total) || 0) - shown.length;
  if (more > 0) {
    frag.appendChild(h("div", { class: "list-group-item text-body-secondary small queue-more",
      dataset: { more: more }, text: "… and " + more + " more" }));
  }
  el.appendChild(frag);
  return true;
}

/** A long list starts collapsed; then it stays as it is (or as the user set it) while the page shows, so
 * a list growing past the limit does not fold away under the reader. */
function applyCompletedOpen(count) {
  if (state.completedOpen === null && count) state.completedOpen = count <= COMPLETED_OPEN_MAX;
  var open = state.completedOpen !== false;
  var toggle = $("#queue-completed-toggle");
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  $("#queue-completed").hidden = !open;
  $("#queue-completed-count").textContent = String(count);
}

function stat(label, value) {
  return h("div", { class: "col-4 col-lg" },
    h("div", { class: "card card-body py-2 px-3 h-100" },
      h("div", { class: "small text-body-secondary", text: label }),
      h("div", { class: "fs-5 fw-semibold", dataset: { stat: label.toLowerCase() }, text: String(value) })));
}

/** The Speed card follows the progress events between two queue_status answers. */
function updateTotalSpeed() {
  var el = document.querySelector("#queue-stats [data-stat='speed']");
  if (!el || (state.status && state.status.is_paused)) return;
  var total = Object.keys(state.live).reduce(function (sum, id) { return sum + (Number(state.live[id].speed_mbps) || 0); }, 0);
  el.textContent = fmt.speed(total) || "–";
}

function render(status) {
  state.status = status;
  updateQueueBadge(status);
  if (!state.visible) return;
  var active = status.active_downloads || [];
  var pending = status.pending_queue || [];
  var completed = status.completed_downloads || [];
  var failed = status.failed_downloads || [];
  var stats = status.statistics || {};
  // Forget live progress of items that are no longer downloading.
  var activeIds = {};
  active.forEach(function (it) { activeIds[it.id] = true; });
  Object.keys(state.live).forEach(function (id) { if (!activeIds[id]) delete state.live[id]; });

  var running = !!status.is_running;
  var paused = !!status.is_paused;
  $("#queue-state").textContent = !running ? "Stopped" : paused ? "Paused" : "Running";
  var btn = function (a) { return $("[data-queue-action='" + a + "']"); };
  btn("start").disabled = running;
  btn("stop").disabled = !running;
  btn("pause").disabled = !running || paused;
  btn("resume").disabled = !paused;
  btn("retry").disabled = !failed.length && !stats.failed;
  btn("clear").disabled = !completed.length && !stats.completed;

  var stats_ = clear($("#queue-stats"));
  // The items' own (live) speeds are fresher than the status' total when progress events arrive.
  var itemSpeeds = active.reduce(function (s, it) { return s + (itemProgress(it).speed || 0); }, 0);
  var speed = itemSpeeds > 0 && !paused ? itemSpeeds : stats.speed_mbps !== undefined ? stats.speed_mbps : itemSpeeds;
  [
    ["Active", stats.active !== undefined ? stats.active : active.length],
    ["Waiting", stats.pending !== undefined ? stats.pending : pending.length],
    ["Completed", stats.completed !== undefined ? stats.completed : completed.length],
    ["Failed", stats.failed !== undefined ? stats.failed : failed.length],
    ["Speed", fmt.speed(speed) || "–"],
  ].forEach(function (s) { stats_.appendChild(stat(s[0], s[1])); });

  // Keep focus on the same button across a re-render (keyboard users).
  var focused = document.activeElement;
  var focusKey = focused && focused.closest && focused.closest(".queue-item") && focused.dataset
    ? { id: focused.closest(".queue-item").dataset.itemId, retry: focused.dataset.retry, remove: focused.dataset.remove,
      priority: focused.dataset.priority }
    : null;

  var any = [
    renderList($("#queue-active"), active, "active", status.active_downloads_total),
    renderList($("#queue-pending"), pending, "pending", status.pending_queue_total),
    renderList($("#queue-failed"), failed, "failed", status.failed_downloads_total),
    renderList($("#queue-completed"), completed, "completed", status.completed_downloads_total),
  ].some(Boolean);
  applyCompletedOpen(Math.max(completed.length, Number(status.completed_downloads_total) || 0));
  $("#queue-empty").hidden = any;

  if (focusKey && focusKey.id) {
    var row = document.querySelector(".queue-item[data-item-id='" + focusKey.id + "']");
    var target = row && (row.querySelector(focusKey.retry ? "[data-retry]"
      : focusKey.priority ? "select[data-priority]" : "[data-remove]"));
    if (target) target.focus();
  }
  markReady("queue");
}

function fetchStatus() {
  state.lastFetch = Date.now();
  return api("GET", "/api/queue/status").then(render).catch(function (err) {
    showError(err, "Loading the queue failed");
  });
}

/** At most one status fetch per second, however many events ask for one. */
function scheduleFetch() {
  if (state.refreshTimer) return;
  var wait = Math.max(0, 1000 - (Date.now() - state.lastFetch));
  state.refreshTimer = setTimeout(function () {
    state.refreshTimer = null;
    if (state.visible) fetchStatus();
  }, wait);
}

function onProgress(d) {
  var id = d.download_id;
  if (id === undefined || id === null) return;
  var prev = state.live[id];
  if (!prev || (d.percent || 0) >= (prev.percent || 0) || (d.downloaded_bytes || 0) < (prev.downloaded_bytes || 0)) {
    state.live[id] = d;
  }
  var quarter = Math.floor((d.percent || 0) / 25);
  if (state.announced[id] === undefined || quarter > state.announced[id]) {
    if (state.announced[id] !== undefined || quarter > 0) {
      announce(itemTitle({ serie_name: d.folder, key: d.key, season: d.season, episode: d.episode }) + ": " +
        Math.floor(d.percent || 0) + " percent");
    }
    state.announced[id] = quarter;
  }
  if (!state.visible) return;
  var row = document.querySelector("#queue-active .queue-item[data-item-id='" + String(id).replace(/'/g, "") + "']");
  if (!row) {
    scheduleFetch(); // an item we have not seen start yet
    return;
  }
  var p = {
    percent: Math.max(0, Math.min(100, Number(state.live[id].percent) || 0)),
    downloaded: state.live[id].downloaded_bytes,
    total: state.live[id].total_bytes,
    speed: state.live[id].speed_mbps,
    eta: state.live[id].eta_seconds,
  };
  var bar = row.querySelector(".progress");
  bar.setAttribute("aria-valuenow", String(Math.floor(p.percent)));
  bar.setAttribute("aria-valuetext", progressValueText(p));
  bar.firstChild.style.width = p.percent + "%";
  row.querySelector(".progress-text").textContent = progressText(p);
  updateTotalSpeed();
}

function seriesName(d) {
  if (d.name) return d.name;
  var lists = state.status ? [].concat(state.status.active_downloads || [], state.status.completed_downloads || []) : [];
  var known = lists.filter(function (it) { return it.key === d.key && it.serie_name; })[0];
  return known ? known.serie_name : d.folder || d.key;
}

function batchText(b) {
  return b.count === 1 ? "Downloaded " + b.name + " " + fmt.episode(b.last.season, b.last.episode) + "."
    : "Downloaded " + b.count + " episodes of " + b.name + ".";
}

/** Tell a series' batch: a new toast, or the still-shown one of this series counts on. */
function flushBatch(key) {
  var b = state.batches[key];
  if (!b || !b.count) return;
  clearTimeout(b.timer);
  b.timer = null;
  var text = batchText(b);
  if (b.toast && b.toast.parentNode) b.toast.setMessage(text);
  else b.toast = toast(text, "success", { tag: "downloaded:" + key });
  announce(text);
  b.toast.dataset.downloaded = key;
  b.toast.dataset.count = String(b.count);
}

/** More of this series still waits or downloads in a running queue (per the last queue_status)? */
function seriesBusy(key) {
  var st = state.status;
  if (!st || !st.is_running || st.is_paused) return false;
  return [].concat(st.active_downloads || [], st.pending_queue || []).some(function (it) {
    return (it.key || it.serie_id) === key && !state.finished[it.id];
  });
}

/** (Re)arm a waiting batch's timer: short once nothing of the series is left, long while some is. */
function scheduleBatch(key, restart) {
  var b = state.batches[key];
  if (!b || !b.count || (!b.timer && !restart)) return;
  var long = seriesBusy(key);
  if (b.timer && !restart && long === b.long) return;
  clearTimeout(b.timer);
  b.long = long;
  b.timer = setTimeout(function () { flushBatch(key); }, long ? BATCH_QUIET_MAX : BATCH_WINDOW);
}

function onComplete(d) {
  delete state.announced[d.download_id];
  state.finished[d.download_id] = true;
  var key = d.key || d.folder || "";
  var b = state.batches[key];
  // A batch starts over once its toast is gone and nothing is waiting to be told.
  if (!b || (!b.timer && !(b.toast && b.toast.parentNode))) {
    b = state.batches[key] = { count: 0, name: "", last: null, timer: null, long: false, toast: null };
  }
  b.count += 1;
  b.name = seriesName(d);
  b.last = d;
  scheduleBatch(key, true);
  bus.emit("queue:changed", d);
  if (state.visible) scheduleFetch();
}

function onFailed(d) {
  delete state.announced[d.download_id];
  state.finished[d.download_id] = true;
  if (d.key) scheduleBatch(d.key, false);
  var what = (d.folder || d.key) + " " + fmt.episode(d.season, d.episode);
  toast((d.will_retry ? "Download will be retried: " : "Download failed: ") + what + " (" + (d.reason || "error") + ")",
    d.will_retry ? "warning" : "danger", { tag: "failed:" + (d.key || "") }); // one per series: the latest
  bus.emit("queue:changed", d);
  if (state.visible) scheduleFetch();
}

/** Keep `finished` small: only ids the status still lists as active or waiting matter. */
function forgetFinished(status) {
  var listed = {};
  [].concat(status.active_downloads || [], status.pending_queue || []).forEach(function (it) { listed[it.id] = true; });
  Object.keys(state.finished).forEach(function (id) { if (!listed[id]) delete state.finished[id]; });
}

var ACTIONS = {
  start: ["POST", "/api/queue/start"],
  stop: ["POST", "/api/queue/stop"],
  pause: ["POST", "/api/queue/pause"],
  resume: ["POST", "/api/queue/resume"],
  retry: ["POST", "/api/queue/retry"],
  clear: ["DELETE", "/api/queue/completed"],
};

function looksLikeStatus(x) {
  return x && typeof x === "object" && "pending_queue" in x && "active_downloads" in x;
}

function runAction(name, button) {
  var a = ACTIONS[name];
  setBusy(button, true);
  return api(a[0], a[1], a[0] === "POST" ? {} : undefined).then(function (answer) {
    // Start/stop/pause/resume answer with the new status in `queue`; retry/clear only with a count.
    if (answer && looksLikeStatus(answer.queue)) render(answer.queue);
    else if (looksLikeStatus(answer)) render(answer);
    else return fetchStatus();
  }).catch(function (err) {
    showError(err, button.textContent);
  }).then(function () {
    setBusy(button, false);
    if (state.status) render(state.status); // restore the enabled/disabled state
    if (button && !button.disabled) button.focus();
  });
}

function setPriority(select) {
  var id = select.dataset.priority;
  var previous = select.dataset.current;
  var wanted = select.value;
  if (wanted === previous) return;
  var hadFocus = document.activeElement === select;
  select.disabled = true;
  select.setAttribute("aria-busy", "true");
  api("PATCH", "/api/queue/" + encodeURIComponent(id), { priority: wanted }).then(function (item) {
    toast("Priority of " + itemTitle(item) + " set to " + item.priority, "success");
    return fetchStatus();
  }, function (err) {
    select.value = previous; // nothing changed on the server
    showError(err, "Priority");
    if (err && err.status === 409) fetchStatus(); // it started meanwhile
  }).then(function () {
    var row = document.querySelector(".queue-item[data-item-id='" + String(id).replace(/'/g, "") + "']");
    var again = row && row.querySelector("select[data-priority]");
    if (!again) return;
    again.disabled = false;
    again.removeAttribute("aria-busy");
    // Give focus back only if it was lost to the disabled select, never take it from elsewhere.
    var lost = !document.activeElement || document.activeElement === document.body;
    if (hadFocus && lost) again.focus();
  });
}

export function init() {
  registerView("queue", view);
  $("#queue-completed-toggle").addEventListener("click", function (ev) {
    var open = ev.currentTarget.getAttribute("aria-expanded") !== "true";
    state.completedOpen = open;
    ev.currentTarget.setAttribute("aria-expanded", open ? "true" : "false");
    $("#queue-completed").hidden = !open;
  });
  $("[data-view='queue'] [role='toolbar']").addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-queue-action]");
    if (btn) runAction(btn.getAttribute("data-queue-action"), btn);
  });
  $("[data-view='queue']").addEventListener("change", function (ev) {
    var select = ev.target.closest && ev.target.closest("select[data-priority]");
    if (select) setPriority(select);
  });
  $("[data-view='queue']").addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-retry], button[data-remove]");
    if (!btn) return;
    if (btn.dataset.retry) {
      setBusy(btn, true);
      api("POST", "/api/queue/retry", { item_ids: [Number(btn.dataset.retry)] })
        .then(fetchStatus, function (err) { showError(err, "Retry"); setBusy(btn, false); });
      return;
    }
    var id = btn.dataset.remove;
    var ask = btn.dataset.kind === "active"
      ? confirmDialog("Cancel this download?", "The partial file is deleted and the episode stays missing.", "Cancel download", "btn-danger")
      : Promise.resolve(true);
    ask.then(function (yes) {
      if (!yes) return;
      setBusy(btn, true);
      var list = btn.closest(".list-group");
      api("DELETE", "/api/queue/" + encodeURIComponent(id)).then(function () {
        announce("Removed");
        bus.emit("queue:changed", null);
        return fetchStatus().then(function () {
          // The row is gone: focus the next one's button, or the list's heading.
          if (document.activeElement && document.activeElement !== document.body) return;
          var next = list && list.querySelector("button[data-remove]");
          var section = list && list.closest("section");
          // The list emptied: its section is hidden, so the page's heading takes focus.
          var heading = section && !section.hidden ? section.querySelector("h2") : $("#queue-title");
          if (next) next.focus();
          else if (heading) heading.focus();
        });
      }, function (err) {
        showError(err, "Remove");
        setBusy(btn, false);
      });
    });
  });

  var socket = currentSocket();
  var attach = function (s) {
    s.on("queue_status", function (status) {
      if (state.visible) render(status);
      else state.status = status;
      forgetFinished(status);
      Object.keys(state.batches).forEach(function (key) { scheduleBatch(key, false); });
    });
    s.on("download_progress", onProgress);
    s.on("download_complete", onComplete);
    s.on("download_failed", onFailed);
    s.on("connect", function () { if (state.visible) fetchStatus(); }); // catch up after a reconnect
  };
  if (socket) attach(socket);
  else bus.on("ws:created", attach);
}

var view = {
  title: function () { return "Queue"; },
  show: function () {
    state.visible = true;
    state.completedOpen = null;
    if (state.status) render(state.status);
    fetchStatus();
  },
  hide: function () {
    state.visible = false;
  },
};
