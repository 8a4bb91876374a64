/* Library page (#/library): series grid or list with filters, posters, unmatched folders. */
import { api } from "../core/api.js";
import { $, $all, clear, cssEscape, debounce, h, isTextEntry, markReady } from "../core/dom.js";
import { languageBadge, seasonOrder, siteLabel } from "../core/format.js";
import { announce, setBusy, showError, toast } from "../core/notify.js";
import { currentView, registerView } from "../core/router.js";
import { bus } from "../core/socket.js";

var PREFS_KEY = "aniworldd.library_prefs";

/**
 * Poster image URLs carry a poster token (`?t=`, from GET /api/library/poster-token), never the login JWT:
 * an <img> cannot send the Authorization header, and a URL ends up in history and logs. The token only
 * opens poster images, lasts 6-12 hours and is the same string for a whole 6-hour window, so the image
 * URLs (and the browser's cache of them) stay stable across page loads.
 */
var POSTER_PLACEHOLDER = "/static/poster-placeholder.svg";
var Posters = {
  token: null,
  expiresAt: 0,
  pending: null,
  /** Resolves to a usable token (fetched when none or less than an hour left), or null. */
  ensure: function () {
    if (this.token && this.expiresAt - Date.now() > 3600 * 1000) return Promise.resolve(this.token);
    if (this.pending) return this.pending;
    var self = this;
    this.pending = api("GET", "/api/library/poster-token", undefined, { noAuthRedirect: true })
      .then(function (answer) {
        self.token = (answer && answer.token) || null;
        self.expiresAt = Date.parse(answer && answer.expires_at) || 0;
      }, function () { self.token = null; })
      .then(function () {
        self.pending = null;
        return self.token;
      });
    return this.pending;
  },
  url: function (key) {
    if (!this.token) return POSTER_PLACEHOLDER;
    return "/api/anime/" + encodeURIComponent(key) + "/poster?t=" + encodeURIComponent(this.token);
  },
  /** An image failed (token expired, password changed, daemon gone): placeholder now, new token next load. */
  failed: function (img) {
    if (img.getAttribute("src") === POSTER_PLACEHOLDER) return;
    this.expiresAt = 0;
    img.src = POSTER_PLACEHOLDER;
  },
};

/**
 * The library: every series by default, as a poster grid or a compact list (remembered), each with
 * "on disk / listed", missing and queued counts. "Missing only" narrows it to series with gaps.
 * One GET /api/anime?all=true carries everything the cards show; filters and sorting run locally.
 */
var RENDER_FIRST = 60; // cards rendered at once: a screenful, also on a large monitor
var RENDER_SLICE = 250; // then this many per task (well under 50 ms)

export var Library = {
  items: [],
  loadedAt: 0,
  prefs: { q: "", sort: "name", site: "", missing: false, view: "grid" },
  loadPrefs: function () {
    try {
      var p = JSON.parse(localStorage.getItem(PREFS_KEY) || "{}");
      if (p.sort === "name" || p.sort === "missing") this.prefs.sort = p.sort;
      if (p.site === "aniworld" || p.site === "sto" || p.site === "") this.prefs.site = p.site;
      if (p.view === "grid" || p.view === "list") this.prefs.view = p.view;
      this.prefs.missing = p.missing === true; // the old `all` switch is gone: all series is the default now
    } catch (e) { /* defaults */ }
    $("#library-sort").value = this.prefs.sort;
    $("#library-site").value = this.prefs.site;
    $("#library-missing").checked = this.prefs.missing;
    $("#library-view-" + this.prefs.view).checked = true;
  },
  savePrefs: function () {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify({
        sort: this.prefs.sort, site: this.prefs.site, missing: this.prefs.missing, view: this.prefs.view,
      }));
    } catch (e) { /* ignore */ }
  },
  load: function () {
    var list = $("#library-list");
    list.setAttribute("aria-busy", "true");
    if (!this.items.length) {
      this.setViewClass(list);
      clear(list);
      for (var i = 0; i < 4; i++) list.appendChild(h("div", { class: "skeleton-row", "aria-hidden": "true" }));
    }
    var self = this;
    var seq = (this.seq = (this.seq || 0) + 1);
    return Promise.all([api("GET", "/api/anime?all=true"), Posters.ensure()]).then(function (answers) {
      if (seq !== self.seq) return; // a newer load is on its way
      var data = answers[0];
      self.items = Array.isArray(data) ? data : (data && (data.items || data.series)) || [];
      self.loadedAt = Date.now();
      self.render();
    }).catch(function (err) {
      clear(list);
      showError(err, "Loading the library failed");
    }).then(function () {
      list.setAttribute("aria-busy", "false");
      markReady("library");
    });
  },
  missingCount: function (s) {
    if (typeof s.missing_count === "number") return s.missing_count;
    var m = s.missing_episodes || {};
    return Object.keys(m).reduce(function (n, k) { return n + (m[k] || []).length; }, 0);
  },
  setViewClass: function (list) {
    var grid = this.prefs.view === "grid";
    list.className = grid ? "series-grid" : "list-group series-list";
    list.dataset.layout = this.prefs.view; // not data-view: that attribute marks the router's pages
  },
  render: function () {
    var self = this;
    var q = this.prefs.q.trim().toLowerCase();
    var site = this.prefs.site;
    var onlyMissing = this.prefs.missing;
    var items = this.items.filter(function (s) {
      if (site && s.site !== site) return false;
      if (onlyMissing && !self.missingCount(s)) return false;
      if (!q) return true;
      return [s.name, s.key, s.folder].some(function (v) { return v && String(v).toLowerCase().indexOf(q) >= 0; });
    });
    // One shared collator: localeCompare with options builds a new one per call (slow for 2,000 names).
    var collator = this.collator || (this.collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true }));
    var byName = function (a, b) { return collator.compare(String(a.name || a.key), String(b.name || b.key)); };
    items.sort(this.prefs.sort === "missing"
      ? function (a, b) { return self.missingCount(b) - self.missingCount(a) || byName(a, b); }
      : byName);

    var list = $("#library-list");
    this.setViewClass(list);
    clear(list);
    this.append(list, items, this.prefs.view === "grid" ? this.card : this.row);

    var totalMissing = this.items.reduce(function (n, s) { return n + self.missingCount(s); }, 0);
    $("#library-summary").textContent = (items.length === this.items.length ? "" : items.length + " of ") +
      this.items.length + " series · " + totalMissing + " missing episodes";
    var empty = $("#library-empty");
    empty.dataset.reason = !this.items.length ? "empty" : !items.length ? "filtered" : "";
    if (!this.items.length) {
      empty.textContent = "The library is empty. Add a series under “Search & add”, or scan the library.";
    } else if (!items.length) {
      empty.textContent = onlyMissing && !q && !site && !totalMissing
        ? "Nothing is missing: all " + this.items.length + " series are complete. Turn off “Missing only” to see them."
        : "No series match the filter.";
    }
    empty.hidden = !empty.dataset.reason;
  },
  /**
   * Add the cards in slices: the first screenful at once, the rest in short tasks, so 2,000 series never
   * block the page for long (typing in the filter stays responsive). A newer render stops an older one.
   */
  append: function (list, items, make) {
    var self = this;
    var seq = (this.renderSeq = (this.renderSeq || 0) + 1);
    var at = 0;
    var slice = function (count) {
      if (seq !== self.renderSeq) return;
      var frag = document.createDocumentFragment();
      var end = Math.min(items.length, at + count);
      for (; at < end; at++) frag.appendChild(make.call(self, items[at]));
      list.appendChild(frag);
      if (at < items.length) setTimeout(function () { slice(RENDER_SLICE); }, 0);
    };
    slice(RENDER_FIRST);
  },
  /** "38/38" (on disk / listed), or null when the server does not send the counts. */
  countsText: function (s) {
    if (typeof s.listed_count !== "number" || typeof s.on_disk_count !== "number") return null;
    return s.on_disk_count + "/" + s.listed_count;
  },
  badges: function (s) {
    var missing = this.missingCount(s);
    var queued = s.queued_count || 0;
    return [
      h("span", {
        class: "badge rounded-pill missing-badge " + (missing ? "text-bg-warning" : "text-bg-success"),
        "aria-label": missing ? missing + " missing episodes" : "complete, nothing missing",
        text: missing ? missing + " missing" : "complete",
      }),
      queued ? h("span", {
        class: "badge rounded-pill text-bg-info queued-badge",
        "aria-label": queued + " episodes queued",
        text: queued + " queued",
      }) : null,
    ];
  },
  languages: function (s) {
    var langs = Array.isArray(s.languages) ? s.languages : [];
    return langs.length ? h("span", { class: "series-langs" }, langs.map(function (code) {
      return languageBadge(code);
    })) : null;
  },
  /** Grid card: poster (lazy), title (wraps, never cut off), counts, badges. */
  card: function (s) {
    var counts = this.countsText(s);
    var title = s.name || s.folder || s.key;
    return h("a", {
      class: "series-row series-card",
      href: "#/series/" + encodeURIComponent(s.key),
      dataset: { key: s.key },
      title: s.folder || title,
    },
    h("span", { class: "poster-frame" },
      h("img", {
        // `loading` before `src`: Chrome decides eager or lazy when the src is set.
        class: "poster", loading: "lazy", decoding: "async", alt: "", width: "240", height: "360",
        src: Posters.url(s.key),
      })),
    h("span", { class: "series-card-body" },
      h("span", { class: "series-name", text: title }),
      h("span", { class: "series-meta" },
        counts ? h("span", { class: "series-counts", title: "episodes on disk / listed", text: counts }) : null,
        this.badges(s)),
      this.languages(s)));
  },
  /** Compact list row: no poster, same counts. */
  row: function (s) {
    var counts = this.countsText(s);
    var seasons = s.missing_episodes || {};
    var parts = Object.keys(seasons).sort(seasonOrder)
      .filter(function (k) { return (seasons[k] || []).length; })
      .map(function (k) {
        return (Number(k) === 0 ? "Movies" : "S" + k) + ": " + seasons[k].length;
      });
    return h("a", {
      class: "list-group-item list-group-item-action series-row",
      href: "#/series/" + encodeURIComponent(s.key),
      dataset: { key: s.key },
    },
    h("div", { class: "d-flex w-100 align-items-start gap-2" },
      h("div", { class: "flex-grow-1 min-w-0" },
        h("div", { class: "fw-semibold series-name", text: s.name || s.folder || s.key }),
        h("div", { class: "small text-body-secondary text-truncate" },
          h("span", { class: "badge text-bg-secondary me-1", text: siteLabel(s.site) }),
          s.folder || ""),
        parts.length ? h("div", { class: "small text-body-secondary", text: parts.join(" · ") }) : null),
      h("div", { class: "series-meta justify-content-end" },
        counts ? h("span", { class: "series-counts", title: "episodes on disk / listed", text: counts }) : null,
        this.badges(s),
        this.languages(s))));
  },
};

/**
 * "the-key", "https://aniworld.to/anime/stream/the-key" or "https://s.to/serie/stream/the-key" ->
 * {key, site} (site null for a bare key: the form's site select decides); null for anything else.
 */
function parseSeriesRef(text) {
  text = String(text || "").trim();
  var keyRe = "([a-z0-9]+(?:-[a-z0-9]+)*)";
  if (text.length <= 200 && new RegExp("^" + keyRe + "$").test(text)) return { key: text, site: null };
  var m = new RegExp("/anime/stream/" + keyRe + "(?:[/?#]|$)").exec(text);
  if (m) return { key: m[1], site: "aniworld" };
  m = new RegExp("/serie(?:/stream)?/" + keyRe + "(?:[/?#]|$)").exec(text);
  if (m) return { key: m[1], site: "sto" };
  return null;
}

/** Library folders without a series marker, each with a form to match it to a provider series. */
var Unmatched = {
  items: [],
  load: function () {
    var self = this;
    return api("GET", "/api/library/unmatched").then(function (list) {
      self.items = Array.isArray(list) ? list : (list && list.items) || [];
      self.render();
    }).catch(function (err) {
      // 503: the library component is not running; the section simply stays away.
      if (err.status !== 503) showError(err, "Loading the unmatched folders failed");
      self.items = [];
      self.render();
    });
  },
  render: function () {
    var section = $("#unmatched");
    var list = $("#unmatched-list");
    // Keep a form the user is typing in (a background reload must not eat the input).
    var el = document.activeElement;
    if (el && list.contains(el) && el.tagName === "INPUT" && el.value.trim()) return;
    clear(list);
    section.hidden = !this.items.length;
    $("#unmatched-count").textContent = String(this.items.length);
    var self = this;
    this.items.forEach(function (u, i) { list.appendChild(self.row(u, i)); });
  },
  row: function (u, i) {
    var id = "unmatched-" + i;
    var input = h("input", {
      class: "form-control form-control-sm unmatched-ref", type: "text", id: id + "-ref", name: "ref",
      required: true, autocomplete: "off", spellcheck: "false", placeholder: "Provider link or series key",
      "aria-describedby": id + "-where",
    });
    var site = h("select", { class: "form-select form-select-sm w-auto", id: id + "-site", name: "site" },
      h("option", { value: "aniworld", text: "aniworld.to" }),
      h("option", { value: "sto", text: "s.to" }));
    input.addEventListener("input", function () {
      var ref = parseSeriesRef(input.value);
      if (ref && ref.site) site.value = ref.site; // a link says which site it is
      Unmatched.setError(input, "");
    });
    return h("form", {
      class: "list-group-item unmatched-item", novalidate: true,
      dataset: { folder: u.folder, root: u.root || "" },
      "aria-label": "Match the folder " + u.folder,
    },
    h("div", { class: "d-flex flex-wrap align-items-baseline gap-2 mb-1" },
      h("code", { class: "text-break fw-semibold unmatched-folder", text: u.folder }),
      h("span", { class: "small text-body-secondary", id: id + "-where",
        text: [u.reason, u.root ? "in " + u.root : ""].filter(Boolean).join(" · ") })),
    h("div", { class: "d-flex flex-wrap gap-2 align-items-start" },
      h("div", { class: "flex-grow-1" },
        h("label", { class: "visually-hidden", for: id + "-ref", text: "Provider link or series key for " + u.folder }),
        input,
        h("div", { class: "invalid-feedback", id: id + "-ref-error" })),
      h("label", { class: "visually-hidden", for: id + "-site", text: "Site" }),
      site,
      h("button", { class: "btn btn-sm btn-primary", type: "submit", text: "Match",
        "aria-label": "Match " + u.folder })));
  },
  setError: function (input, message) {
    var fb = $("#" + cssEscape(input.id + "-error"));
    fb.textContent = message;
    input.classList.toggle("is-invalid", !!message);
    var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (x) { return x && x !== fb.id; });
    if (message) {
      input.setAttribute("aria-invalid", "true");
      ids.unshift(fb.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    input.setAttribute("aria-describedby", ids.join(" "));
  },
  submit: function (form, button) {
    var input = $("input[name=ref]", form);
    var ref = parseSeriesRef(input.value);
    if (!ref) {
      this.setError(input, input.value.trim()
        ? "Not a provider link or series key (a key looks like “my-series-name”)."
        : "Paste the provider link or type the series key.");
      input.focus();
      return Promise.resolve();
    }
    var folder = form.dataset.folder;
    var body = { folder: folder, key: ref.key, site: ref.site || $("select[name=site]", form).value };
    if (form.dataset.root) body.root = form.dataset.root;
    var self = this;
    setBusy(button, true);
    return api("POST", "/api/library/match", body).then(function (answer) {
      var key = (answer && answer.key) || ref.key;
      var msg = "Matched " + folder + " to " + ((answer && answer.name) || key) + ".";
      toast(msg, "success");
      announce(msg);
      if (document.activeElement && form.contains(document.activeElement)) document.activeElement.blur();
      Library.items = [];
      return Promise.all([self.load(), Library.load()]).then(function () {
        var heading = $("#unmatched-title");
        if (!$("#unmatched").hidden) heading.focus();
        else $("#library-title").focus();
      });
    }).catch(function (err) {
      if (err.status === 401) return;
      self.setError(input, err.message);
      input.focus();
    }).then(function () { setBusy(button, false); });
  },
};

var view = {
  title: function () { return "Library"; },
  show: function () {
    // Re-use what is loaded for an instant page, then refresh in the background.
    if (Library.items.length) Library.render();
    Library.load();
    Unmatched.load();
  },
};

export function init() {
  registerView("library", view);
  Library.loadPrefs();
  var q = $("#library-q");
  q.addEventListener("input", debounce(function () {
    Library.prefs.q = q.value;
    Library.render();
  }, 80));
  $("#library-filter").addEventListener("submit", function (ev) { ev.preventDefault(); });
  $("#library-sort").addEventListener("change", function (ev) {
    Library.prefs.sort = ev.target.value;
    Library.savePrefs();
    Library.render();
  });
  $("#library-missing").addEventListener("change", function (ev) {
    Library.prefs.missing = ev.target.checked;
    Library.savePrefs();
    Library.render();
  });
  $("#library-site").addEventListener("change", function (ev) {
    Library.prefs.site = ev.target.value;
    Library.savePrefs();
    Library.render();
  });
  $all("input[name=library-view]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      if (!radio.checked) return;
      Library.prefs.view = radio.value;
      Library.savePrefs();
      Library.render();
    });
  });
  // Poster errors do not bubble; one capturing listener serves every card.
  $("#library-list").addEventListener("error", function (ev) {
    if (ev.target && ev.target.tagName === "IMG") Posters.failed(ev.target);
  }, true);
  // "/" focuses the filter (or the search box on the search page), like many web apps.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (isTextEntry(document.activeElement)) return; // "/" is a character there
    var target = currentView.name === "search" ? $("#search-q") : currentView.name === "library" ? q : null;
    if (target) {
      ev.preventDefault();
      target.focus();
    }
  });
  bus.on("library:changed", debounce(function () {
    if (currentView.name === "library") {
      Library.load();
      Unmatched.load();
    }
  }, 300));
  $("#unmatched-list").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target.closest("form.unmatched-item");
    if (form) Unmatched.submit(form, ev.submitter || $("button[type=submit]", form));
  });
}
