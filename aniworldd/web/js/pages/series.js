/* Series page (#/series/<key>): seasons and episodes, queueing, monitoring, refresh, removal. */
import { api } from "../core/api.js";
import { $, append, clear, debounce, h } from "../core/dom.js";
import { LANGUAGE_LABELS, LANGUAGE_SHORT, episodeLabel, languageBadge, safeUrl, seasonLabel, seasonOrder, siteLabel } from "../core/format.js";
import { announce, confirmDialog, setBusy, showError, toast } from "../core/notify.js";
import { currentView, registerView } from "../core/router.js";
import { bus, currentSocket, refreshQueueBadge } from "../core/socket.js";

var STATUS_INFO = {
  on_disk: { label: "On disk", cls: "text-bg-success" },
  missing: { label: "Missing", cls: "text-bg-warning" },
  queued: { label: "Queued", cls: "text-bg-info" },
  downloading: { label: "Downloading", cls: "text-bg-primary" },
};

var Series = {
  key: null,
  data: null,
  /** The language picked in #series-language for this series ("" = the configured preference). */
  language: "",
  load: function (key) {
    var self = this;
    var changedKey = this.key !== key;
    this.key = key;
    if (changedKey) {
      this.data = null;
      this.language = "";
      $("#series-title").textContent = key;
      $("#series-crumb").textContent = key;
      $("#series-meta").textContent = "";
      $("#series-description").textContent = "";
      $("#series-monitored-wrap").hidden = true;
      clear($("#series-seasons")).appendChild(h("div", { class: "skeleton-row", "aria-hidden": "true" }));
    }
    return api("GET", "/api/anime/" + encodeURIComponent(key)).then(function (data) {
      if (self.key !== key) return;
      self.data = data;
      self.removedKey = null;
      self.render();
    }).catch(function (err) {
      if (self.key !== key) return;
      clear($("#series-seasons"));
      if (err.status === 404) {
        $("#series-upkeep").hidden = true;
        $("#series-actions").hidden = true;
        $("#series-title").textContent = "Series not found";
        $("#series-meta").textContent = "No series with the key “" + key + "” is in the library.";
      } else {
        showError(err, "Loading the series failed");
      }
    });
  },
  episodes: function () {
    return (this.data && this.data.episodes) || [];
  },
  render: function () {
    var d = this.data;
    var name = d.name || d.title || d.folder || d.key;
    $("#series-title").textContent = name;
    $("#series-crumb").textContent = name;
    document.title = name + " · aniworldd";
    var meta = $("#series-meta");
    clear(meta);
    append(meta, [
      h("span", { class: "badge text-bg-secondary me-2", text: siteLabel(d.site) }),
      d.folder ? h("span", { class: "me-2" }, "Folder: ", h("code", { text: d.folder })) : null,
      safeUrl(d.link) ? h("a", { href: safeUrl(d.link), rel: "noopener noreferrer", target: "_blank", text: "Provider page" }) : null,
    ]);
    $("#series-description").textContent = d.description || "";
    $("#series-upkeep").hidden = false;
    $("#series-actions").hidden = false;
    var monitored = $("#series-monitored");
    $("#series-monitored-wrap").hidden = typeof d.monitored !== "boolean"; // an API without monitoring
    monitored.checked = d.monitored === true;

    var bySeason = {};
    this.episodes().forEach(function (ep) {
      (bySeason[ep.season] = bySeason[ep.season] || []).push(ep);
    });
    var seasons = Object.keys(bySeason).map(Number).sort(seasonOrder);
    var container = clear($("#series-seasons"));
    var totalMissing = 0;
    var totalQueued = 0;
    var self = this;
    seasons.forEach(function (season) {
      var eps = bySeason[season].sort(function (a, b) { return a.episode - b.episode; });
      var counts = { on_disk: 0, missing: 0, queued: 0, downloading: 0 };
      eps.forEach(function (ep) { counts[ep.status] = (counts[ep.status] || 0) + 1; });
      totalMissing += counts.missing;
      totalQueued += counts.queued + counts.downloading;
      container.appendChild(self.seasonCard(season, eps, counts));
    });
    this.renderLanguages();
    if (!seasons.length) {
      container.appendChild(h("p", { class: "text-body-secondary",
        text: "No episodes known yet. The provider's episode list is fetched when the series is added or refreshed." }));
    }
    var all = $("#series-download-all");
    all.disabled = totalMissing === 0;
    all.textContent = totalMissing ? "Download all missing (" + totalMissing + ")"
      : totalQueued ? "All missing episodes queued" : "Nothing missing";
  },
  /** Languages any episode is offered in: the configured preference first, then the rest. */
  availableLanguages: function () {
    var offered = {};
    this.episodes().forEach(function (ep) {
      (ep.languages || []).forEach(function (code) { offered[code] = true; });
    });
    var preferred = (this.data && this.data.preferred_languages) || [];
    var order = preferred.concat(Object.keys(LANGUAGE_LABELS));
    var out = order.filter(function (code, i) { return offered[code] && order.indexOf(code) === i; });
    Object.keys(offered).sort().forEach(function (code) { if (out.indexOf(code) < 0) out.push(code); });
    return out;
  },
  /** The language select beside the download button; the default follows the configured preference. */
  renderLanguages: function () {
    var select = $("#series-language");
    var preferred = ((this.data && this.data.preferred_languages) || []).map(function (code) {
      return LANGUAGE_SHORT[code] || code;
    });
    var codes = this.availableLanguages();
    if (this.language && codes.indexOf(this.language) < 0) this.language = "";
    clear(select);
    select.appendChild(h("option", { value: "",
      text: "Language: preferred" + (preferred.length ? " (" + preferred.join(" → ") + ")" : "") }));
    codes.forEach(function (code) {
      select.appendChild(h("option", { value: code, text: "Language: " + (LANGUAGE_LABELS[code] || code) }));
    });
    select.value = this.language;
  },
  seasonCard: function (season, eps, counts) {
    var self = this;
    var headingId = "season-" + season + "-title";
    var queued = counts.queued + counts.downloading;
    var summary = [
      counts.on_disk + " on disk",
      counts.missing + " missing",
      queued ? queued + " queued" : null,
    ].filter(Boolean).join(" · ");
    // Every missing episode already in the queue is not "complete": say what is going on.
    var state = counts.missing ? "Download missing (" + counts.missing + ")"
      : queued ? "All missing episodes queued" : "Complete";
    var rows = eps.map(function (ep) { return self.episodeRow(ep); });
    return h("section", { class: "card mb-3 season-card", "aria-labelledby": headingId, dataset: { season: season } },
      h("div", { class: "card-header d-flex flex-wrap align-items-center gap-2" },
        h("h2", { class: "h6 mb-0 me-auto", id: headingId, tabindex: "-1" }, seasonLabel(season),
          h("span", { class: "fw-normal text-body-secondary small ms-2", text: summary })),
        h("button", {
          type: "button",
          class: "btn btn-sm btn-outline-primary",
          disabled: counts.missing === 0,
          dataset: { downloadSeason: season },
          "aria-label": counts.missing ? "Download the missing episodes of " + seasonLabel(season)
            : seasonLabel(season) + ": " + state,
          text: state,
        })),
      h("div", { class: "table-responsive" },
        // Fixed layout with the same column widths for every season (series.css): columns line up.
        h("table", { class: "table table-sm align-middle mb-0 episode-table" },
          h("caption", { class: "visually-hidden", text: "Episodes of " + seasonLabel(season) }),
          h("thead", null, h("tr", null,
            h("th", { scope: "col", class: "ep-num", text: "#" }),
            h("th", { scope: "col", class: "col-title", text: "Title" }),
            h("th", { scope: "col", class: "col-langs d-none d-sm-table-cell", text: "Languages" }),
            h("th", { scope: "col", class: "col-status", text: "Status" }),
            h("th", { scope: "col", class: "col-actions text-end" }, h("span", { class: "visually-hidden", text: "Actions" })))),
          h("tbody", null, rows))));
  },
  episodeRow: function (ep) {
    var info = STATUS_INFO[ep.status] || { label: ep.status, cls: "text-bg-secondary" };
    var label = episodeLabel(ep.season, ep.episode);
    var langs = (ep.languages || []).map(function (code) {
      return languageBadge(code, code === ep.on_disk_language ? "text-bg-success" : null);
    });
    return h("tr", { dataset: { season: ep.season, episode: ep.episode, status: ep.status } },
      h("td", { class: "ep-num text-nowrap", text: label }),
      h("td", { class: "ep-title" }, ep.title || "",
        h("div", { class: "d-sm-none" }, langs.map(function (b) { return b.cloneNode(true); }))),
      h("td", { class: "d-none d-sm-table-cell" }, langs),
      h("td", null, h("span", { class: "badge status-badge " + info.cls, text: info.label }),
        ep.status === "on_disk" && ep.on_disk_language
          ? h("span", { class: "small text-body-secondary ms-1", text: LANGUAGE_SHORT[ep.on_disk_language] || ep.on_disk_language })
          : null),
      h("td", { class: "text-end" }, ep.status === "missing"
        ? h("button", {
          type: "button", class: "btn btn-sm btn-link p-0", dataset: { downloadEpisode: ep.season + ":" + ep.episode },
          "aria-label": "Download " + label, text: "Download",
        })
        : null));
  },
  queue: function (episodes, button) {
    var d = this.data;
    if (!d || !episodes.length) return;
    var language = this.language;
    var langName = LANGUAGE_LABELS[language] || language;
    var skipped = 0;
    if (language) {
      // A chosen language is all or nothing on the server: leave out episodes not offered in it.
      var known = {};
      this.episodes().forEach(function (ep) { known[ep.season + ":" + ep.episode] = ep.languages || []; });
      var offered = episodes.filter(function (ep) {
        var langs = ep.languages || known[ep.season + ":" + ep.episode] || [];
        return !langs.length || langs.indexOf(language) >= 0;
      });
      skipped = episodes.length - offered.length;
      episodes = offered;
      if (!episodes.length) {
        toast("Not offered in " + langName + ": nothing was queued.", "warning");
        return Promise.resolve();
      }
    }
    var body = {
      serie_id: d.key,
      serie_folder: d.folder,
      serie_name: d.name || d.title || d.key,
      episodes: episodes.map(function (ep) { return { season: ep.season, episode: ep.episode }; }),
      priority: $("#series-priority").value,
    };
    if (language) body.language = language;
    setBusy(button, true);
    var self = this;
    return api("POST", "/api/queue/add", body).then(function (answer) {
      var n = Array.isArray(answer) ? answer.length
        : answer && Array.isArray(answer.items) ? answer.items.length
        : answer && typeof answer.added === "number" ? answer.added : episodes.length;
      toast("Queued " + n + " episode" + (n === 1 ? "" : "s") + " of " + body.serie_name +
        (language ? " in " + langName : "") +
        (skipped ? " (" + skipped + " not offered in " + langName + " left out)" : "") + ".", "success");
      announce("Queued " + n + " episodes.");
      refreshQueueBadge();
      return self.load(self.key);
    }).catch(function (err) {
      showError(err, "Queueing failed");
    }).then(function () {
      setBusy(button, false);
      self.restoreFocus(button);
    });
  },
  /** Turn scheduled refresh on or off; the switch goes back when the server says no. */
  setMonitored: function (input) {
    var d = this.data;
    if (!d) return Promise.resolve();
    var wanted = input.checked;
    var name = d.name || d.title || d.key;
    input.disabled = true;
    return api("PATCH", "/api/anime/" + encodeURIComponent(d.key), { monitored: wanted }).then(function (answer) {
      var now = answer && typeof answer.monitored === "boolean" ? answer.monitored : wanted;
      d.monitored = now;
      input.checked = now;
      var msg = now ? "Monitoring " + name + ": new episodes are looked for on schedule."
        : "Stopped monitoring " + name + ".";
      toast(msg, "success", { tag: "monitored:" + d.key });
      announce(msg);
    }).catch(function (err) {
      input.checked = !wanted;
      showError(err, "Changing monitoring failed");
    }).then(function () { input.disabled = false; });
  },
  /** Re-read the episode list from the provider now; the toast says how many episodes are new. */
  refresh: function (button) {
    var d = this.data;
    var key = this.key;
    if (!key) return Promise.resolve();
    var name = (d && (d.name || d.title)) || key;
    var self = this;
    setBusy(button, true);
    var label = button.textContent;
    button.textContent = "Refreshing…";
    return api("POST", "/api/anime/refresh", { key: key }).then(function (answer) {
      answer = answer || {};
      var news = Array.isArray(answer.new_episodes) ? answer.new_episodes
        : typeof answer.new_episodes === "number" ? new Array(answer.new_episodes) : [];
      var n = news.length;
      var msg;
      if (answer.baseline) {
        msg = name + ": episode list read from the provider.";
      } else if (!n) {
        msg = name + ": no new episodes.";
      } else {
        var labels = news.filter(function (ep) { return ep && ep.episode !== undefined; }).slice(0, 5)
          .map(function (ep) { return episodeLabel(ep.season, ep.episode); });
        msg = name + ": " + n + " new episode" + (n === 1 ? "" : "s") +
          (labels.length ? " (" + labels.join(", ") + (n > labels.length ? ", …" : "") + ")" : "") +
          (answer.queued ? ", " + answer.queued + " queued" : "") + ".";
      }
      toast(msg, n ? "success" : "info");
      announce(msg);
      if (answer.queued) refreshQueueBadge();
      if (self.key === key) return self.load(key);
    }).catch(function (err) {
      showError(err, "Refresh failed");
    }).then(function () {
      button.textContent = label;
      setBusy(button, false);
    });
  },
  /** Remove the series after a confirmation; "Also delete the files" adds ?delete_files=true. */
  remove: function (button) {
    var d = this.data;
    var key = this.key;
    if (!key) return Promise.resolve();
    var name = (d && (d.name || d.title)) || key;
    var folder = d && d.folder;
    var asked = confirmDialog("Remove " + name + "?",
      "The series leaves the library, monitoring and the calendar; its queued downloads are cancelled. " +
      (folder ? "Its folder “" + folder + "” stays on disk unless you tick the box; a kept folder is " +
        "listed under unmatched folders, where it can be matched again." : ""),
      "Remove series", "btn-danger");
    var box = h("input", { class: "form-check-input", type: "checkbox", id: "series-remove-files" });
    var bodyEl = $("#confirm-body");
    if (folder && bodyEl && window.bootstrap && window.bootstrap.Modal) {
      bodyEl.appendChild(h("div", { class: "form-check mt-3" }, box,
        h("label", { class: "form-check-label", for: "series-remove-files", text: "Also delete the files" })));
    }
    var self = this;
    return asked.then(function (ok) {
      if (!ok) return null;
      var deleteFiles = box.checked;
      setBusy(button, true);
      self.removedKey = key; // our own series_removed event may arrive before the answer
      return api("DELETE", "/api/anime/" + encodeURIComponent(key) + (deleteFiles ? "?delete_files=true" : ""))
        .then(function (answer) {
          answer = answer || {};
          var msg = name + " removed" + (answer.files_deleted ? " and its files deleted"
            : answer.files_kept ? "; its files were kept" : "") + ".";
          if (answer.warning) toast(answer.warning, "warning");
          toast(msg, "success");
          announce(msg);
          refreshQueueBadge();
          if (self.key === key) location.hash = "#/library";
          bus.emit("library:changed", { key: key, removed: true });
        }).catch(function (err) {
          if (self.removedKey === key) self.removedKey = null;
          showError(err, "Removing " + name + " failed");
        }).then(function () { setBusy(button, false); });
    });
  },
  /** Another browser (or a script) removed the series shown here: back to the library. */
  onRemoved: function (data) {
    if (!data || !data.key) return;
    bus.emit("library:changed", data);
    if (currentView.name !== "series" || this.key !== data.key || this.removedKey === data.key) return;
    toast((data.name || data.key) + " was removed from the library.", "info");
    location.hash = "#/library";
  },
  /** The list was re-rendered (or the button disabled): keep keyboard users where they were. */
  restoreFocus: function (button) {
    if (currentView.name !== "series" || (document.activeElement && document.activeElement !== document.body)) return;
    var target = null;
    if (button && button.dataset.downloadSeason !== undefined) {
      var card = $(".season-card[data-season='" + button.dataset.downloadSeason + "']");
      target = card && (card.querySelector("button:not([disabled])") || card.querySelector("h2"));
    }
    target = target || (button && button.isConnected && !button.disabled ? button : $("#series-title"));
    if (target) target.focus();
  },
};

var view = {
  title: function (key) { return key; },
  show: function (key) {
    if (!key) {
      location.replace("#/library");
      return;
    }
    Series.load(key);
  },
};

export function init() {
  registerView("series", view);
  $("#series-seasons").addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.dataset.downloadSeason !== undefined) {
      var season = Number(btn.dataset.downloadSeason);
      Series.queue(Series.episodes().filter(function (ep) {
        return ep.season === season && ep.status === "missing";
      }), btn);
    } else if (btn.dataset.downloadEpisode) {
      var se = btn.dataset.downloadEpisode.split(":").map(Number);
      Series.queue([{ season: se[0], episode: se[1] }], btn);
    }
  });
  $("#series-monitored").addEventListener("change", function (ev) { Series.setMonitored(ev.target); });
  $("#series-refresh").addEventListener("click", function (ev) { Series.refresh(ev.currentTarget); });
  $("#series-download-all").addEventListener("click", function (ev) {
    Series.queue(Series.episodes().filter(function (ep) { return ep.status === "missing"; }), ev.currentTarget);
  });
  $("#series-language").addEventListener("change", function (ev) { Series.language = ev.target.value; });
  $("#series-remove").addEventListener("click", function (ev) { Series.remove(ev.currentTarget); });
  // Imported on the first visit (core/router.js registerLazyView): the socket may exist already.
  var attach = function (socket) {
    socket.on("series_removed", function (data) { Series.onRemoved(data); });
  };
  if (currentSocket()) attach(currentSocket());
  else bus.on("ws:created", attach);
  var reload = debounce(function () {
    if (currentView.name === "series" && Series.key) Series.load(Series.key);
  }, 400);
  bus.on("library:changed", function (data) {
    if (!data || !data.key || data.key === Series.key) reload();
  });
  bus.on("queue:changed", function (data) {
    if (!data || !data.key || data.key === Series.key) reload();
  });
}
