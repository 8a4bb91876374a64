/* The one WebSocket of the page, an in-page event bus that pages subscribe to, the queue badge. */
import { Auth, api, sessionExpired } from "./api.js";
import { $ } from "./dom.js";
import { io } from "./websocket_client.js";

var socket = null;
var authCheckAt = 0;

/** The page's socket, null before the first login. */
export function currentSocket() {
  return socket;
}

export function startSocket() {
  if (socket) {
    if (!socket.connected) socket.connect();
    return socket;
  }
  socket = io({ token: function () { return Auth.token(); } });
  socket.join("downloads");
  socket.join("download_progress");
  socket.join("scan_progress");
  socket.on("connect", function () { setWsState(true); bus.emit("ws:connect"); });
  socket.on("disconnect", function () { setWsState(false); });
  socket.on("connect_error", function () {
    setWsState(false);
    // A rejected upgrade looks like any other failure; ask the API whether the token is still good.
    if (Date.now() - authCheckAt > 15000 && Auth.token()) {
      authCheckAt = Date.now();
      api("GET", "/api/auth/status").then(function (st) {
        if (st && st.authenticated === false) sessionExpired();
      }, function () { /* offline: keep retrying quietly */ });
    }
  });
  socket.on("queue_status", function (status) { updateQueueBadge(status); });
  socket.on("download_complete", function (data) {
    bus.emit("library:changed", data);
  });
  bus.emit("ws:created", socket);
  return socket;
}

function setWsState(connected) {
  var el = $("#ws-state");
  if (!el) return;
  el.textContent = connected ? "● live" : "○ offline";
  el.classList.toggle("text-success", connected);
  el.classList.toggle("text-body-secondary", !connected);
  el.title = connected ? "Live updates connected" : "Live updates disconnected; reconnecting";
}

/** A tiny in-page event bus so views can react to socket events without knowing about each other. */
export var bus = {
  handlers: {},
  on: function (name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); },
  emit: function (name, data) { (this.handlers[name] || []).forEach(function (fn) { fn(data); }); },
};

export function updateQueueBadge(status) {
  var badge = $("#queue-badge");
  if (!badge || !status) return;
  var stats = status.statistics || {};
  // Counts, never list lengths: the lists hold only their first page (`<list>_total` counts them all).
  var count = function (stat, total, list) {
    return stat !== undefined ? stat : total !== undefined ? total : (list || []).length;
  };
  var n = count(stats.active, status.active_downloads_total, status.active_downloads) +
    count(stats.pending, status.pending_queue_total, status.pending_queue);
  badge.textContent = String(n);
  badge.hidden = n === 0;
  badge.setAttribute("aria-label", n + " in queue");
}

export function refreshQueueBadge() {
  api("GET", "/api/queue/status").then(updateQueueBadge, function () { /* badge is optional */ });
}
