/*
 * The "Run doctor" button on the system page. GET /api/system/doctor runs `aniworldd doctor`
 * against the running configuration (config, DNS, TCP/TLS, challenge, search, series, episode, hosters)
 * and the table shows each step with ok/fail, what was seen and, for a failing step, how to fix it.
 */
import { api } from "../core/api.js";
import { $, clear, h } from "../core/dom.js";
import { setBusy } from "../core/notify.js";

function row(step) {
  var result = step.ok
    ? h("span", { class: "badge text-bg-success", text: "ok" })
    : h("span", { class: "badge text-bg-danger", text: "fail" });
  var detail = h("td", { class: "small text-break" }, h("div", { text: step.detail }));
  if (!step.ok && step.hint) {
    detail.appendChild(h("div", { class: "text-body-secondary" }, h("strong", { text: "Fix: " }), step.hint));
  }
  return h("tr", { dataset: { step: step.name, ok: step.ok ? "true" : "false" } },
    h("td", null, result),
    h("th", { scope: "row", text: step.name }),
    h("td", { class: "small text-break", text: step.target }),
    detail);
}

function render(report) {
  var failed = report.steps.filter(function (s) { return !s.ok; }).length;
  $("#doctor-summary").textContent = failed
    ? failed + " of " + report.steps.length + " steps failed"
    : "All " + report.steps.length + " steps passed";
  var body = clear($("#doctor-table tbody"));
  report.steps.forEach(function (step) { body.appendChild(row(step)); });
  $("#doctor-table").hidden = false;
}

function run(ev) {
  var button = ev.currentTarget;
  var summary = $("#doctor-summary");
  setBusy(button, true);
  summary.textContent = "Checking… (up to a minute)";
  api("GET", "/api/system/doctor").then(render).catch(function (e) {
    if (e.status === 401) return;
    summary.textContent = "The check could not run: " + e.message;
  }).then(function () { setBusy(button, false); });
}

export function init() {
  var button = $("#doctor-run");
  if (button) button.addEventListener("click", run);
}
