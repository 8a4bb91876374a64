/*
 * Entry point of the single-page UI (hash routes; only the documented REST API + WebSocket). Imports the pages
 * every visit needs (login, library, the queue's live toasts, scan strip, provider banner; index.html preloads
 * exactly these), registers the others to be imported on their first visit, then asks the daemon about the
 * login and routes. Everything the server sends goes into the page with textContent, never innerHTML.
 * window.App is only a hook for tests and the browser console; no module reads it.
 */
import { $, $all, h, clear, debounce, markReady } from "./core/dom.js";
import { fmt, languageBadge } from "./core/format.js";
import { Auth, api, sessionExpired } from "./core/api.js";
import { announce, toast, showError, confirmDialog, setBusy } from "./core/notify.js";
import { bus, startSocket, currentSocket, updateQueueBadge, refreshQueueBadge } from "./core/socket.js";
import { views, authState, registerLazyView, route } from "./core/router.js";
import * as authPage from "./pages/auth.js";
import * as library from "./pages/library.js";
import * as scan from "./pages/scan.js";
import * as queue from "./pages/queue.js";
import * as providerBanner from "./pages/provider_banner.js";

/** Pages needed on every visit, in the order their handlers are bound (bus handlers keep that order). */
var PAGES = {
  providerBanner: providerBanner.init,
  auth: authPage.init,
  library: library.init,
  scan: scan.init,
  queue: queue.init,
};

/** Pages imported on their first visit (core/router.js registerLazyView). */
var LAZY_PAGES = {
  series: function () { return import("./pages/series.js"); },
  search: function () { return import("./pages/search.js"); },
  config: function () { return import("./pages/config.js"); },
  system: function () { return import("./pages/system.js"); },
  calendar: function () { return import("./pages/calendar.js"); },
  history: function () { return import("./pages/history.js"); },
  apikeys: function () { return import("./pages/apikeys.js"); },
};

/** hx-* attributes added to the page talk to the same API: send the token, treat 401 like fetch does. */
function initHtmx() {
  document.body.addEventListener("htmx:configRequest", function (ev) {
    var token = Auth.token();
    if (token) ev.detail.headers.Authorization = "Bearer " + token;
  });
  document.body.addEventListener("htmx:responseError", function (ev) {
    if (ev.detail && ev.detail.xhr && ev.detail.xhr.status === 401) sessionExpired();
  });
}

function boot() {
  Object.keys(PAGES).forEach(function (k) { PAGES[k](); });
  Object.keys(LAZY_PAGES).forEach(function (k) { registerLazyView(k, LAZY_PAGES[k]); });
  initHtmx();
  window.addEventListener("hashchange", route);

  api("GET", "/api/auth/status", undefined, { noAuthRedirect: true }).then(function (st) {
    authState.configured = !(st && st.configured === false);
    if (st && st.authenticated === false && Auth.token()) Auth.clear(); // revoked or from another secret
    if (Auth.token()) {
      document.body.classList.remove("logged-out");
      startSocket();
      setTimeout(refreshQueueBadge, 0);
    }
    route();
  }).catch(function (err) {
    var boot_ = $("#boot");
    clear(boot_).appendChild(h("div", { class: "alert alert-danger d-inline-block", role: "alert" },
      "Cannot reach the daemon: " + err.message + " ",
      h("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-2", text: "Retry",
        onclick: function () { location.reload(); } })));
  });
}

window.App = {
  api: api,
  h: h,
  $: $,
  $all: $all,
  clear: clear,
  toast: toast,
  announce: announce,
  showError: showError,
  confirm: confirmDialog,
  setBusy: setBusy,
  debounce: debounce,
  fmt: fmt,
  languageBadge: languageBadge,
  views: views,
  bus: bus,
  auth: Auth,
  markReady: markReady,
  updateQueueBadge: updateQueueBadge,
  socket: currentSocket,
  extraInits: PAGES,
};

// A module runs after the document is parsed, like the deferred scripts before it (bootstrap, htmx), and
// before DOMContentLoaded.
if (document.readyState !== "complete") document.addEventListener("DOMContentLoaded", boot);
else setTimeout(boot, 0);
