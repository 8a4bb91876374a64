/* The library scan button and progress strip (in the navbar, on every page). */
import { api } from "../core/api.js";
import { $ } from "../core/dom.js";
import { announce, setBusy, showError, toast } from "../core/notify.js";
import { bus } from "../core/socket.js";

/**
 * The scan strip shows full scans; only a scan started here (the "Scan library" button) ends with a toast.
 * scan_complete says `scope` (partial: a few folders, e.g. after each download) and `requested` (someone
 * asked: API, CLI, MQTT); partial and the daemon's own scans change the library silently.
 */
var Scan = {
  strip: function () { return $("#scan-strip"); },
  lastAnnounced: -1,
  watchdog: null,
  startedHere: false,
  start: function () {
    Scan.startedHere = true;
    // Shown before the request: a small library can finish (scan_complete) before the 202 arrives.
    Scan.show(0, "Starting the scan…");
    api("POST", "/api/anime/rescan", {}).then(function () {
      announce("Library scan started");
    }).catch(function (err) {
      Scan.startedHere = false;
      Scan.hide();
      showError(err, "Scan");
    });
  },
  show: function (percent, label) {
    var strip = this.strip();
    strip.hidden = false;
    percent = Math.max(0, Math.min(100, Math.round(percent || 0)));
    $("#scan-bar").style.width = percent + "%";
    $("#scan-progress").setAttribute("aria-valuenow", String(percent));
    $("#scan-percent").textContent = percent + " %";
    if (label) $("#scan-label").textContent = label;
    setBusy($("#scan-btn"), true);
    // If the end of the scan is never heard of (connection lost meanwhile), do not stay stuck.
    clearTimeout(Scan.watchdog);
    Scan.watchdog = setTimeout(Scan.hide, 60000);
  },
  hide: function () {
    clearTimeout(Scan.watchdog);
    Scan.strip().hidden = true;
    setBusy($("#scan-btn"), false);
    Scan.lastAnnounced = -1;
  },
  onProgress: function (d) {
    if (d.partial) return; // a few folders after a download: not a library scan to show
    var label = "Scanning" + (d.folder ? " " + d.folder : "") +
      (d.total ? " (" + d.current + "/" + d.total + ")" : "") + "…";
    Scan.show(d.percent, label);
    var step = Math.floor((d.percent || 0) / 25);
    if (step !== Scan.lastAnnounced) {
      Scan.lastAnnounced = step;
      announce("Scan " + Math.round(d.percent || 0) + " percent");
    }
  },
  onComplete: function (d) {
    d = d || {};
    bus.emit("library:changed", null);
    if (d.scope === "partial") return;
    Scan.show(100, "Scan finished");
    clearTimeout(Scan.watchdog);
    Scan.watchdog = setTimeout(Scan.hide, 800);
    if (!Scan.startedHere || d.requested === false) return; // not ours, or the daemon's own scan
    Scan.startedHere = false;
    var msg = Scan.summary(d);
    toast(msg, "success", { tag: "scan" });
    announce(msg);
  },
  /** "Scan finished: 3 series, 40 episodes, 38 missing, 2 unmatched folders." (`unmatched` is a list.) */
  summary: function (d) {
    var count = function (n, one, many) {
      n = Number(n) || 0;
      return n + " " + (n === 1 ? one : many);
    };
    var unmatched = Array.isArray(d.unmatched) ? d.unmatched.length : Number(d.unmatched) || 0;
    return "Scan finished: " + [
      count(d.series, "series", "series"),
      count(d.episodes, "episode", "episodes"),
      (Number(d.missing_episodes) || 0) + " missing",
      unmatched ? count(unmatched, "unmatched folder", "unmatched folders") : "",
    ].filter(Boolean).join(", ") + ".";
  },
  onFailed: function (d) {
    Scan.hide();
    if (!Scan.startedHere) return;
    Scan.startedHere = false;
    toast("Scan failed: " + ((d && d.error) || "unknown error"), "danger");
  },
};

export function init() {
  $("#scan-btn").addEventListener("click", Scan.start);
  bus.on("ws:created", function (socket) {
    socket.on("scan_progress", Scan.onProgress);
    socket.on("scan_complete", Scan.onComplete);
    socket.on("scan_failed", Scan.onFailed);
  });
}
