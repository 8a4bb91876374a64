/*
 * The calendar page (#/calendar). GET /api/calendar?days=N lists what happened to the library
 * lately: episodes downloaded and episodes the provider newly listed (found by a refresh after the series
 * was added). The page groups them by day (the browser's local day), newest first, each with its series
 * link, the episode label used everywhere in the UI and a status badge. A finished download reloads it.
 */
import { api } from "../core/api.js";
import { $, clear, debounce, h, markReady } from "../core/dom.js";
import { fmt } from "../core/format.js";
import { registerView } from "../core/router.js";
import { bus } from "../core/socket.js";

var DAYS_KEY = "aniworldd.calendar_days";
var visible = false;

function badge(entry) {
  if (entry.type === "downloaded") return { label: "Downloaded", cls: "text-bg-success", status: "downloaded" };
  if (entry.on_disk) return { label: "On disk", cls: "text-bg-secondary", status: "on_disk" };
  return { label: "New", cls: "text-bg-info", status: "new" };
}

function dayKey(date) {
  return date.getFullYear() + "-" + (date.getMonth() + 1) + "-" + date.getDate();
}

function dayTitle(date) {
  var today = new Date();
  var yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(today)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return date.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

function entryRow(entry) {
  var b = badge(entry);
  var at = new Date(entry.at);
  var detail = [];
  if (entry.title) detail.push(entry.title);
  if (entry.type === "downloaded" && entry.language) detail.push(fmt.language(entry.language));
  if (entry.type === "listed" && entry.languages && entry.languages.length) {
    detail.push(entry.languages.map(fmt.language).join(", "));
  }
  return h("li", { class: "list-group-item d-flex flex-wrap align-items-center gap-2 calendar-entry",
    dataset: { key: entry.key, type: entry.type, status: b.status, season: entry.season, episode: entry.episode } },
    h("span", { class: "text-body-secondary small calendar-time", text: isNaN(at.getTime()) ? "" :
      at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) }),
    h("a", { href: "#/series/" + encodeURIComponent(entry.key), class: "fw-semibold", text: entry.name || entry.key }),
    h("span", { class: "badge text-bg-light border episode-label", text: fmt.episode(entry.season, entry.episode) }),
    detail.length ? h("span", { class: "small text-body-secondary text-truncate calendar-detail", text: detail.join(" · ") }) : null,
    h("span", { class: "badge ms-auto " + b.cls, text: b.label }));
}

function render(data) {
  var box = clear($("#calendar-days"));
  var entries = data.entries || [];
  var downloaded = entries.filter(function (e) { return e.type === "downloaded"; }).length;
  $("#calendar-summary").textContent = entries.length
    ? downloaded + " downloaded, " + (entries.length - downloaded) + " newly listed in the last " + data.days + " days"
    : "";
  $("#calendar-empty").hidden = entries.length > 0;
  if (!entries.length) {
    $("#calendar-empty").textContent = "Nothing downloaded or newly listed in the last " + data.days + " days.";
    return;
  }
  var groups = [];
  var byDay = {};
  entries.forEach(function (entry) {
    var at = new Date(entry.at);
    var key = isNaN(at.getTime()) ? "?" : dayKey(at);
    if (!byDay[key]) {
      byDay[key] = { title: key === "?" ? "Unknown day" : dayTitle(at), day: key, items: [] };
      groups.push(byDay[key]);
    }
    byDay[key].items.push(entry);
  });
  groups.forEach(function (g) {
    box.appendChild(h("section", { class: "mb-3 calendar-day", dataset: { day: g.day }, "aria-label": g.title },
      h("h2", { class: "h6 text-body-secondary mb-2", text: g.title }),
      h("ul", { class: "list-group" }, g.items.map(entryRow))));
  });
}

function days() {
  return $("#calendar-range").value;
}

function load() {
  var err = $("#calendar-error");
  $("#calendar-days").setAttribute("aria-busy", "true");
  return api("GET", "/api/calendar?days=" + encodeURIComponent(days())).then(function (data) {
    err.hidden = true;
    render(data);
    markReady("calendar");
  }).catch(function (e) {
    if (e.status === 401) return;
    err.textContent = "Loading the calendar failed: " + e.message;
    err.hidden = false;
  }).then(function () {
    $("#calendar-days").setAttribute("aria-busy", "false");
  });
}

var view = {
  title: function () { return "Calendar"; },
  show: function () {
    visible = true;
    return load();
  },
  hide: function () { visible = false; },
};

export function init() {
  registerView("calendar", view);
  var select = $("#calendar-range");
  if (!select) return;
  var saved = window.localStorage && localStorage.getItem(DAYS_KEY);
  if (saved && select.querySelector("option[value='" + saved.replace(/[^0-9]/g, "") + "']")) select.value = saved;
  select.addEventListener("change", function () {
    try { localStorage.setItem(DAYS_KEY, select.value); } catch (e) { /* private mode */ }
    load();
  });
  // A finished download lands in the calendar: reload while the page is shown.
  bus.on("library:changed", debounce(function () { if (visible) load(); }, 500));
}
