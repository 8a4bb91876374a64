/*
 * API keys for scripts (#/apikeys), with /api/auth/api-keys (login token only: a key cannot
 * manage keys). The list never holds a key itself; a new key is shown once, right after it was made, with
 * a copy button, and forgotten when the box is closed or the page is left. Revoking asks first (the app's
 * confirm dialog): scripts using that key stop working at once, live connections included.
 */
import { api } from "../core/api.js";
import { $, clear, h, markReady } from "../core/dom.js";
import { fmt } from "../core/format.js";
import { announce, confirmDialog, setBusy, showError, toast } from "../core/notify.js";
import { registerView } from "../core/router.js";

var SCOPES = {
  feed: { label: "feed", cls: "text-bg-light border", help: "only the calendar feed (phone calendars)" },
  read: { label: "read", cls: "text-bg-info", help: "read everything, change nothing" },
  control: { label: "control", cls: "text-bg-warning", help: "read, queue and scan" },
  admin: { label: "admin", cls: "text-bg-danger", help: "everything an API key may do, configuration and logs too" },
};

function hideSecret() {
  var box = $("#apikey-new");
  if (!box) return;
  $("#apikey-secret").value = "";
  $("#apikey-feed").hidden = true;
  $("#apikey-feed-url").value = "";
  box.hidden = true;
}

function copy(input, button) {
  var text = input.value;
  var done = function () {
    button.textContent = "Copied";
    announce("Copied to the clipboard");
    setTimeout(function () { button.textContent = "Copy"; }, 2000);
  };
  var fallback = function () {
    input.focus();
    input.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    if (ok) done();
    else toast("Copying is blocked here: the key is selected, press Ctrl+C.", "warning");
  };
  if (window.navigator && navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
}

function showSecret(created) {
  $("#apikey-new-name").textContent = created.name;
  $("#apikey-secret").value = created.key;
  var feed = (created.scope || "") === "feed";
  $("#apikey-feed").hidden = !feed;
  $("#apikey-feed-url").value = feed ? location.origin + "/feed/calendar.ics?token=" + encodeURIComponent(created.key) : "";
  $("#apikey-new").hidden = false;
  $("#apikey-secret").focus();
  $("#apikey-secret").select();
}

function revoke(key, button) {
  confirmDialog("Revoke this API key?", "Scripts using \u201c" + key.name + "\u201d stop working at once. This cannot be undone.",
    "Revoke", "btn-danger").then(function (yes) {
    if (!yes) return;
    setBusy(button, true);
    api("DELETE", "/api/auth/api-keys/" + encodeURIComponent(key.id)).then(function () {
      toast("API key \u201c" + key.name + "\u201d revoked", "success");
      load();
    }).catch(function (e) {
      showError(e, "Revoke");
      setBusy(button, false);
    });
  });
}

function row(key) {
  var scope = SCOPES[key.scope] || { label: key.scope || "?", cls: "text-bg-secondary", help: "" };
  return h("tr", { dataset: { keyId: key.id } },
    h("th", { scope: "row", class: "text-break", text: key.name }),
    h("td", null, h("span", { class: "badge " + scope.cls, text: scope.label, title: scope.help })),
    h("td", { class: "small", text: fmt.date(key.created_at) }),
    h("td", { class: "small", text: key.last_used_at ? fmt.date(key.last_used_at) : "never" }),
    h("td", { class: "text-end" }, h("button", { type: "button", class: "btn btn-outline-danger btn-sm apikey-revoke",
      text: "Revoke", "aria-label": "Revoke " + key.name, onclick: function (ev) { revoke(key, ev.currentTarget); } })));
}

function render(keys) {
  var body = clear($("#apikeys-table tbody"));
  $("#apikeys-table").hidden = !keys.length;
  $("#apikeys-empty").hidden = keys.length > 0;
  keys.forEach(function (k) { body.appendChild(row(k)); });
}

function load() {
  var err = $("#apikeys-error");
  return api("GET", "/api/auth/api-keys").then(function (keys) {
    err.hidden = true;
    $("#apikey-form").hidden = false;
    render(keys || []);
    markReady("apikeys");
  }).catch(function (e) {
    if (e.status === 401) return;
    err.textContent = e.status === 403
      ? e.message + " (API keys are switched on and off with auth.api_keys_enabled in the configuration.)"
      : "Loading the API keys failed: " + e.message;
    err.hidden = false;
    if (e.status === 403) $("#apikey-form").hidden = true;
  });
}

function create(ev) {
  ev.preventDefault();
  var form = ev.currentTarget;
  var name = $("#apikey-name");
  var value = name.value.trim();
  if (!value) {
    name.classList.add("is-invalid");
    name.focus();
    return;
  }
  name.classList.remove("is-invalid");
  var button = form.querySelector("button[type=submit]");
  setBusy(button, true);
  api("POST", "/api/auth/api-keys", { name: value, scope: $("#apikey-scope").value }).then(function (created) {
    form.reset();
    showSecret(created);
    return load();
  }).catch(function (e) {
    showError(e, "Create API key");
  }).then(function () { setBusy(button, false); });
}

var view = {
  title: function () { return "API keys"; },
  show: load,
  hide: hideSecret, // the new key is shown once: leaving the page forgets it
};

export function init() {
  registerView("apikeys", view);
  var form = $("#apikey-form");
  if (!form) return;
  var select = $("#apikey-scope");
  Object.keys(SCOPES).forEach(function (s) {
    select.appendChild(h("option", { value: s, text: s + ": " + SCOPES[s].help, selected: s === "read" }));
  });
  form.addEventListener("submit", create);
  $("#apikey-copy").addEventListener("click", function (ev) { copy($("#apikey-secret"), ev.currentTarget); });
  $("#apikey-feed-copy").addEventListener("click", function (ev) { copy($("#apikey-feed-url"), ev.currentTarget); });
  $("#apikey-done").addEventListener("click", hideSecret);
}
