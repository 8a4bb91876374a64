/* Hash router: pages register a view ({title, show, hide, focus}); route() shows the one in the hash. */
import { Auth } from "./api.js";
import { $, $all } from "./dom.js";
import { toast } from "./notify.js";

/** Where to go back to after the login page (sessionStorage). */
export var RETURN_KEY = "aniworldd.return_to";

export var views = {};

/** A page's view: {show(arg), title(arg)?, hide()?, focus()?}, shown for #/<name>[/<arg>]. */
export function registerView(name, view) {
  views[name] = view;
}

/**
 * A page imported on its first visit, so the first page (the library) does not wait for every other page's
 * code: `load()` resolves to the page's module, whose init() binds its handlers and registers the real view.
 */
export function registerLazyView(name, load) {
  var pending = null;
  views[name] = {
    load: function () {
      pending = pending || load().then(function (mod) { mod.init(); }, function (err) {
        pending = null; // the next visit tries again
        throw err;
      });
      return pending;
    },
  };
}

/** The view on screen (pages check it before reacting to live events). */
export var currentView = { name: null, arg: null };
export var authState = { configured: true };
var routeSeq = 0; // a lazy page's import resolves into route() only if no newer navigation came meanwhile

function parseHash() {
  var hash = (location.hash || "").replace(/^#\/?/, "");
  var parts = hash.split("/");
  return { name: parts[0] || "library", arg: parts.slice(1).map(decodeURIComponent).join("/") || null };
}

function showView(name) {
  $all("[data-view]").forEach(function (section) {
    section.hidden = section.getAttribute("data-view") !== name;
  });
  $all("[data-nav]").forEach(function (link) {
    var active = link.getAttribute("data-nav") === name || (name === "series" && link.getAttribute("data-nav") === "library");
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
  var boot = $("#boot");
  if (boot) boot.hidden = true;
  // Collapse the phone menu after navigating.
  var menu = $("#nav-menu");
  if (menu && menu.classList.contains("show") && window.bootstrap) {
    window.bootstrap.Collapse.getOrCreateInstance(menu, { toggle: false }).hide();
  }
}

export function route() {
  var seq = ++routeSeq;
  var r = parseHash();
  if (!authState.configured && r.name !== "setup") {
    location.replace("#/setup");
    return;
  }
  var publicView = r.name === "login" || r.name === "setup";
  if (!publicView && !Auth.token()) {
    sessionStorage.setItem(RETURN_KEY, location.hash || "#/library");
    location.replace("#/login");
    return;
  }
  if (r.name === "setup" && authState.configured) {
    location.replace(Auth.token() ? "#/library" : "#/login");
    return;
  }
  if (r.name === "login" && Auth.token()) {
    location.replace("#/library");
    return;
  }
  var view = views[r.name];
  if (view && view.load) {
    // Route again once the real view is registered (unless the user went elsewhere meanwhile).
    view.load().then(function () { if (seq === routeSeq) route(); }, function (err) {
      toast("Could not load this page (" + err.message + "). Try again.", "danger");
    });
    return;
  }
  var name = view ? r.name : "notfound";
  if (currentView.name && currentView.name !== name && views[currentView.name] && views[currentView.name].hide) {
    views[currentView.name].hide();
  }
  var changed = currentView.name !== name || currentView.arg !== r.arg;
  currentView = { name: name, arg: r.arg };
  showView(name);
  document.title = (view && view.title ? view.title(r.arg) + " · " : "") + "aniworldd";
  if (view) view.show(r.arg);
  if (changed) {
    var focusTarget = view && view.focus ? view.focus() : $("[data-view='" + name + "'] h1");
    if (focusTarget) focusTarget.focus({ preventScroll: false });
  }
}
