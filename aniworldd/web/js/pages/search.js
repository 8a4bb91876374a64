/* Search & add page (#/search): provider search and adding a series by link. */
import { api } from "../core/api.js";
import { $, clear, h } from "../core/dom.js";
import { safeUrl, siteLabel } from "../core/format.js";
import { announce, setBusy, showError, toast } from "../core/notify.js";
import { registerView } from "../core/router.js";
import { Library } from "./library.js";

function keyFromLink(link) {
  var m = /\/(?:anime\/stream|serie\/stream|serie)\/([a-z0-9]+(?:-[a-z0-9]+)*)/.exec(link || "");
  return m ? m[1] : null;
}

var Search = {
  run: function (query, site) {
    var results = $("#search-results");
    var errBox = $("#search-error");
    errBox.hidden = true;
    results.setAttribute("aria-busy", "true");
    clear(results).appendChild(h("div", { class: "list-group-item text-body-secondary", role: "status", text: "Searching…" }));
    var body = { query: query };
    if (site) body.site = site;
    return api("POST", "/api/anime/search", body).then(function (list) {
      list = Array.isArray(list) ? list : (list && list.results) || [];
      clear(results);
      if (!list.length) {
        results.appendChild(h("div", { class: "list-group-item text-body-secondary", text: "No series found for “" + query + "”." }));
      }
      list.forEach(function (r) { results.appendChild(Search.row(r)); });
      announce(list.length + " results");
    }).catch(function (err) {
      clear(results);
      if (err.status === 401) return;
      errBox.textContent = err.status === 503 && !(err.details && err.details.component)
        ? "The provider is not reachable: " + err.message : err.message;
      errBox.hidden = false;
    }).then(function () { results.setAttribute("aria-busy", "false"); });
  },
  row: function (r) {
    return h("div", { class: "list-group-item d-flex flex-wrap align-items-center gap-2 search-result", dataset: { key: r.key } },
      h("div", { class: "flex-grow-1 min-w-0" },
        h("div", { class: "fw-semibold" }, r.name || r.key, r.year ? h("span", { class: "text-body-secondary fw-normal", text: " (" + r.year + ")" }) : null),
        h("div", { class: "small text-body-secondary text-truncate" },
          h("span", { class: "badge text-bg-secondary me-1", text: siteLabel(r.site) }),
          safeUrl(r.link) ? h("a", { href: safeUrl(r.link), rel: "noopener noreferrer", target: "_blank", text: r.link }) : null)),
      h("button", {
        type: "button", class: "btn btn-sm btn-primary", dataset: { addLink: r.link || "" },
        "aria-label": "Add " + (r.name || r.key), text: "Add",
      }));
  },
  add: function (link, button) {
    setBusy(button, true);
    return api("POST", "/api/anime/add", { link: link }).then(function (series) {
      var key = (series && (series.key || (series.series && series.series.key))) || keyFromLink(link);
      var name = (series && (series.name || series.title)) || key;
      toast("Added " + name + ".", "success");
      announce("Added " + name);
      Library.items = [];
      location.hash = "#/series/" + encodeURIComponent(key);
    }).catch(function (err) {
      var key = (err.details && err.details.key) || keyFromLink(link);
      if (err.status === 409 && key) {
        toast("Already in the library.", "secondary");
        location.hash = "#/series/" + encodeURIComponent(key);
        return;
      }
      showError(err, "Adding failed");
    }).then(function () { setBusy(button, false); });
  },
};

var view = {
  title: function () { return "Search & add"; },
  show: function () {},
};

export function init() {
  registerView("search", view);
  $("#search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = $("#search-q").value.trim();
    if (!q) {
      $("#search-q").focus();
      return;
    }
    Search.run(q, $("#search-site").value);
  });
  $("#add-link-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = $("#add-link");
    var link = input.value.trim();
    if (!link) {
      input.focus();
      return;
    }
    Search.add(link, ev.submitter || $("button[type=submit]", ev.target)).then(function () { input.value = ""; });
  });
  $("#search-results").addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-add-link]");
    if (btn) Search.add(btn.dataset.addLink, btn);
  });
}
