/*
 * A banner on every page while a provider site blocks us (a captcha, a browser check),
 * saying what happened and what the user can do. It reads /api/system/status once (provider_health) and then
 * follows the `health` events on the WebSocket, which say when a wall starts and when it is over.
 */
import { api } from "../core/api.js";
import { $, clear, h } from "../core/dom.js";
import { bus } from "../core/socket.js";

var blocked = {};

function render() {
  var el = $("#provider-banner");
  if (!el) return;
  clear(el);
  var hosts = Object.keys(blocked).sort();
  hosts.forEach(function (host) {
    var wall = blocked[host];
    el.appendChild(h("div", { class: "provider-banner-item" },
      h("strong", { text: wall.message || host + " blocks us" }),
      wall.hint ? h("span", { text: " — " + wall.hint }) : null));
  });
  el.hidden = hosts.length === 0;
}

function onHealth(data) {
  if (!data || data.component !== "provider" || !data.host) return;
  if (data.status === "blocked") blocked[data.host] = data;
  else delete blocked[data.host];
  render();
}

function load() {
  api("GET", "/api/system/status").then(function (st) {
    blocked = {};
    var walls = (st && st.provider_health) || {};
    Object.keys(walls).forEach(function (host) {
      blocked[host] = { host: host, status: "blocked", message: walls[host].message, hint: walls[host].hint };
    });
    render();
  }, function () { /* not logged in or offline: the next connect tries again */ });
}

export function init() {
  bus.on("ws:created", function (socket) { socket.on("health", onHealth); });
  bus.on("ws:connect", load);
}
