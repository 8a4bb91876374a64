/* Formatting shared by all pages: sizes, speeds, dates, episode/season labels, language badges. */
import { h } from "./dom.js";

export var LANGUAGE_LABELS = {
  "ger-dub": "German dub",
  "ger-sub": "German sub",
  "eng-sub": "English sub",
  "eng-dub": "English dub",
};
export var LANGUAGE_SHORT = { "ger-dub": "DE", "ger-sub": "DE sub", "eng-sub": "EN sub", "eng-dub": "EN" };

function pad(n, width) {
  var s = String(n);
  while (s.length < width) s = "0" + s;
  return s;
}

export function episodeLabel(season, episode) {
  season = Number(season);
  if (season === 0) return "Movie " + episode;
  return "S" + pad(season, 2) + "E" + pad(episode, 2);
}

/** Regular seasons in order, movies (season 0) last. */
export function seasonOrder(a, b) {
  a = Number(a);
  b = Number(b);
  if (a === 0 && b !== 0) return 1;
  if (b === 0 && a !== 0) return -1;
  return a - b;
}

export function seasonLabel(season) {
  return Number(season) === 0 ? "Movies" : "Season " + season;
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return "";
  var units = ["B", "KB", "MB", "GB", "TB"];
  var i = 0;
  n = Number(n);
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

/** speed_mbps is MiB per second (the seed's unit; the queue divides yt-dlp's bytes/s by 1024²). */
function fmtSpeed(mbps) {
  if (mbps === null || mbps === undefined || !isFinite(mbps) || mbps <= 0) return "";
  mbps = Number(mbps);
  if (mbps < 1) return Math.max(1, Math.round(mbps * 1024)) + " KB/s";
  return (mbps >= 10 ? mbps.toFixed(0) : mbps.toFixed(1)) + " MB/s";
}

function fmtEta(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) return "";
  seconds = Math.round(seconds);
  var h_ = Math.floor(seconds / 3600);
  var m = Math.floor((seconds % 3600) / 60);
  var s = seconds % 60;
  return h_ > 0 ? h_ + ":" + pad(m, 2) + ":" + pad(s, 2) : m + ":" + pad(s, 2);
}

export function fmtDate(value) {
  if (!value) return "";
  var d = new Date(value);
  if (isNaN(d.getTime())) return String(value);
  return d.toLocaleString();
}

/** Only http(s) links become clickable: provider data must never yield a javascript: URL. */
export function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

export function siteLabel(site) {
  if (site === "sto" || site === "s.to") return "s.to";
  if (site === "aniworld" || site === "aniworld.to") return "aniworld.to";
  return site || "";
}

export function languageBadge(code, extraClass) {
  return h("span", {
    class: "badge lang-badge " + (extraClass || "text-bg-light border"),
    title: LANGUAGE_LABELS[code] || code,
    text: LANGUAGE_SHORT[code] || code,
  });
}

/** The formatters as one object, for pages that say fmt.bytes(n), fmt.episode(s, e)... */
export var fmt = { bytes: fmtBytes, speed: fmtSpeed, eta: fmtEta, date: fmtDate, episode: episodeLabel,
  site: siteLabel, language: function (c) { return LANGUAGE_LABELS[c] || c; } };
