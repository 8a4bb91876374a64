/*
 * The download history (#/history). GET /api/queue/completed pages through finished items,
 * completed and failed, newest first; a failed one shows why it failed (the queue's last error) and can be
 * queued again. Filters: status (all / completed / failed, with counts) and a text on the series name or key,
 * both applied by the server, so a year of history stays one small page. A finished download reloads it.
 */
import { api } from "../core/api.js";
import { $, $all, append, clear, debounce, h, markReady } from "../core/dom.js";
import { fmt } from "../core/format.js";
import { setBusy, showError, toast } from "../core/notify.js";
import { registerView } from "../core/router.js";
import { bus } from "../core/socket.js";

var PAGE = 50;
var state = { visible: false, status: "all", q: "", items: [], total: 0, seq: 0 };

var STATUS = {
  completed: { label: "Completed", cls: "text-bg-success" },
  failed: { label: "Failed", cls: "text-bg-danger" },
};

function retry(item, button) {
  setBusy(button, true);
  api("POST", "/api/queue/retry", { item_ids: [item.id] }).then(function () {
    toast("Queued again: " + (item.serie_name || item.key) + " " + fmt.episode(item.season, item.episode), "success");
    bus.emit("queue:changed", null); // reloads this page too
  }).catch(function (e) {
    showError(e, "Retry");
    setBusy(button, false);
  });
}

function row(item) {
  var st = STATUS[item.status] || { label: item.status, cls: "text-bg-secondary" };
  var meta = [];
  if (item.language) meta.push(fmt.language(item.language));
  if (item.hoster) meta.push(item.hoster);
  if (item.total_bytes) meta.push(fmt.bytes(item.total_bytes));
  if (item.attempts > 1) meta.push(item.attempts + " attempts");
  var main = h("div", { class: "flex-grow-1 min-w-0" },
    h("div", { class: "d-flex flex-wrap align-items-center gap-2" },
      h("a", { href: "#/series/" + encodeURIComponent(item.key), class: "fw-semibold", text: item.serie_name || item.key }),
      h("span", { class: "badge text-bg-light border episode-label", text: fmt.episode(item.season, item.episode) }),
      meta.length ? h("span", { class: "small text-body-secondary", text: meta.join(" · ") }) : null),
    item.status === "failed"
      ? h("div", { class: "small text-danger text-break history-reason", text: item.error || "no reason recorded" })
      : null);
  var side = h("div", { class: "d-flex flex-column align-items-end gap-1 text-nowrap" },
    h("span", { class: "badge " + st.cls, text: st.label }),
    h("span", { class: "small text-body-secondary", text: fmt.date(item.finished_at) }));
  if (item.status === "failed") {
    side.appendChild(h("button", { type: "button", class: "btn btn-outline-secondary btn-sm history-retry",
      text: "Retry", onclick: function (ev) { retry(item, ev.currentTarget); } }));
  }
  return h("li", { class: "list-group-item d-flex gap-3 history-item",
    dataset: { itemId: item.id, status: item.status, key: item.key } }, main, side);
}

function renderCounts(counts) {
  counts = counts || {};
  var all = (counts.completed || 0) + (counts.failed || 0);
  var values = { all: all, completed: counts.completed || 0, failed: counts.failed || 0 };
  $all("#history-status [data-count]").forEach(function (el) {
    el.textContent = String(values[el.getAttribute("data-count")]);
  });
}

function render() {
  var list = clear($("#history-list"));
  state.items.forEach(function (item) { list.appendChild(row(item)); });
  var empty = $("#history-empty");
  empty.hidden = state.items.length > 0;
  if (!state.items.length) {
    empty.textContent = state.q || state.status !== "all" ? "No finished downloads match the filter." : "No finished downloads yet.";
  }
  $("#history-summary").textContent = state.total
    ? "Showing " + state.items.length + " of " + state.total : "";
  var more = $("#history-more");
  more.hidden = state.items.length >= state.total;
  more.textContent = "Show " + Math.min(PAGE, state.total - state.items.length) + " more";
}

/** append: the next page after what is shown; otherwise the first page again (filters changed, reload). */
function load(append) {
  var seq = ++state.seq; // a slow answer to an older filter must not overwrite a newer one
  var offset = append ? state.items.length : 0;
  var limit = append ? PAGE : Math.max(PAGE, Math.min(200, state.items.length));
  var query = "?status=" + encodeURIComponent(state.status) + "&limit=" + limit + "&offset=" + offset +
    (state.q ? "&q=" + encodeURIComponent(state.q) : "");
  var err = $("#history-error");
  $("#history-list").setAttribute("aria-busy", "true");
  return api("GET", "/api/queue/completed" + query).then(function (data) {
    if (seq !== state.seq) return;
    err.hidden = true;
    state.items = append ? state.items.concat(data.items) : data.items;
    state.total = data.total;
    renderCounts(data.counts);
    render();
    markReady("history");
  }).catch(function (e) {
    if (e.status === 401 || seq !== state.seq) return;
    err.textContent = "Loading the history failed: " + e.message;
    err.hidden = false;
  }).then(function () {
    $("#history-list").setAttribute("aria-busy", "false");
  });
}

var view = {
  title: function () { return "History"; },
  show: function () {
    state.visible = true;
    return load(false);
  },
  hide: function () { state.visible = false; },
};

export function init() {
  registerView("history", view);
  var form = $("#history-filter");
  if (!form) return;
  form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  $all("#history-status input[name=history-status]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      if (!radio.checked) return;
      state.status = radio.value;
      state.items = [];
      load(false);
    });
  });
  $("#history-q").addEventListener("input", debounce(function (ev) {
    state.q = ev.target.value.trim().slice(0, 200);
    state.items = [];
    load(false);
  }, 250));
  $("#history-more").addEventListener("click", function (ev) {
    var button = ev.currentTarget;
    setBusy(button, true);
    load(true).then(function () { setBusy(button, false); });
  });
  // A download finished or failed: reload what is shown (keeps the number of loaded items).
  bus.on("queue:changed", debounce(function () { if (state.visible) load(false); }, 500));
}
