/*
 * app.js: the aniworldd single-page UI (hash routes), talking only to the documented REST API + WebSocket.
 *
 * Routes: #/setup  #/login  #/library  #/series/<key>  #/search  #/queue (queue.js)  #/config
 * The JWT lives in localStorage and goes out as `Authorization: Bearer`; any 401 sends the user to the
 * login page and brings them back to where they were afterwards. Everything the server sends is put into
 * the page with textContent (never innerHTML), so a series title cannot inject markup.
 */
(function (global) {
  "use strict";

  var TOKEN_KEY = "aniworldd.token";
  var EXPIRES_KEY = "aniworldd.expires_at";
  var RETURN_KEY = "aniworldd.return_to";
  var PREFS_KEY = "aniworldd.library_prefs";

  // ---------------------------------------------------------------- small DOM helpers

  function $(sel, root) {
    return (root || document).querySelector(sel);
  }

  function $all(sel, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(sel));
  }

  /** h("a", {href: "#", class: "x", dataset: {k: 1}, onclick: fn}, "text", childNode, [more]) */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "class") el.className = value;
        else if (name === "text") el.textContent = value;
        else if (name === "dataset") Object.keys(value).forEach(function (k) { el.dataset[k] = value[k]; });
        else if (name.slice(0, 2) === "on" && typeof value === "function") el.addEventListener(name.slice(2), value);
        else if (value === true) el.setAttribute(name, "");
        else el.setAttribute(name, String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function debounce(fn, ms) {
    var t = null;
    return function () {
      var args = arguments;
      var self = this;
      clearTimeout(t);
      t = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }

  // ---------------------------------------------------------------- formatting

  var LANGUAGE_LABELS = {
    "ger-dub": "German dub",
    "ger-sub": "German sub",
    "eng-sub": "English sub",
    "eng-dub": "English dub",
  };
  var LANGUAGE_SHORT = { "ger-dub": "DE", "ger-sub": "DE sub", "eng-sub": "EN sub", "eng-dub": "EN" };

  function pad(n, width) {
    var s = String(n);
    while (s.length < width) s = "0" + s;
    return s;
  }

  function episodeLabel(season, episode) {
    season = Number(season);
    if (season === 0) return "Movie " + episode;
    return "S" + pad(season, 2) + "E" + pad(episode, 2);
  }

  /** Regular seasons in order, movies (season 0) last. */
  function seasonOrder(a, b) {
    a = Number(a);
    b = Number(b);
    if (a === 0 && b !== 0) return 1;
    if (b === 0 && a !== 0) return -1;
    return a - b;
  }

  function seasonLabel(season) {
    return Number(season) === 0 ? "Movies" : "Season " + season;
  }

  function fmtBytes(n) {
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

  function fmtDate(value) {
    if (!value) return "";
    var d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toLocaleString();
  }

  /** Only http(s) links become clickable: provider data must never yield a javascript: URL. */
  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function siteLabel(site) {
    if (site === "sto" || site === "s.to") return "s.to";
    if (site === "aniworld" || site === "aniworld.to") return "aniworld.to";
    return site || "";
  }

  function languageBadge(code, extraClass) {
    return h("span", {
      class: "badge lang-badge " + (extraClass || "text-bg-light border"),
      title: LANGUAGE_LABELS[code] || code,
      text: LANGUAGE_SHORT[code] || code,
    });
  }

  // ---------------------------------------------------------------- token storage

  var Auth = {
    token: function () {
      try {
        var token = localStorage.getItem(TOKEN_KEY);
        if (!token) return "";
        var exp = localStorage.getItem(EXPIRES_KEY);
        if (exp && isFinite(Number(exp)) && Number(exp) <= Date.now()) {
          Auth.clear();
          return "";
        }
        return token;
      } catch (e) {
        return "";
      }
    },
    set: function (answer) {
      localStorage.setItem(TOKEN_KEY, answer.access_token);
      var exp = parseExpiry(answer.expires_at);
      if (exp) localStorage.setItem(EXPIRES_KEY, String(exp));
      else localStorage.removeItem(EXPIRES_KEY);
    },
    clear: function () {
      try {
        localStorage.removeItem(TOKEN_KEY);
        localStorage.removeItem(EXPIRES_KEY);
      } catch (e) { /* storage disabled */ }
    },
  };

  function parseExpiry(value) {
    if (value === null || value === undefined) return null;
    if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
    var t = Date.parse(value);
    return isNaN(t) ? null : t;
  }

  // ---------------------------------------------------------------- API

  function ApiError(status, code, message, details, headers) {
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.message = message;
    this.details = details || {};
    this.headers = headers;
  }
  ApiError.prototype = Object.create(Error.prototype);

  /**
   * api("GET", "/api/anime") -> parsed JSON (null for 204). Throws ApiError with the server's
   * {"error": {code, message, details}}. A 401 on an authenticated call logs out and goes to #/login.
   */
  function api(method, path, body, opts) {
    opts = opts || {};
    var headers = { Accept: "application/json" };
    var token = Auth.token();
    if (token) headers.Authorization = "Bearer " + token;
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(
      function (res) {
        var type = res.headers.get("Content-Type") || "";
        var parse = res.status === 204 ? Promise.resolve(null)
          : type.indexOf("json") >= 0 ? res.json().catch(function () { return null; })
          : res.text();
        return parse.then(function (data) {
          if (res.ok) return data;
          var err = (data && data.error) || {};
          var message = err.message || (typeof data === "string" && data.length < 200 ? data : "") ||
            res.statusText || "Request failed";
          var apiErr = new ApiError(res.status, err.code || "http_" + res.status, message, err.details, res.headers);
          if (res.status === 401 && !opts.noAuthRedirect) sessionExpired();
          throw apiErr;
        });
      },
      function (err) {
        throw new ApiError(0, "network", "Cannot reach the daemon (" + (err && err.message) + ")", {});
      }
    );
  }

  // ---------------------------------------------------------------- notices

  function announce(message) {
    var region = $("#sr-status");
    if (!region) return;
    region.textContent = "";
    // A new text node on the next frame makes screen readers announce repeated messages too.
    setTimeout(function () { region.textContent = message; }, 50);
  }

  /**
   * Toasts hide by themselves: notices after TOAST_DELAY ms, errors after TOAST_ERROR_DELAY ms (or when
   * closed). The timer pauses while the pointer or keyboard focus is on a toast, so it can be read. At most
   * TOAST_MAX are shown: a new one pushes out the oldest notice (errors go last), and the same message
   * again restarts its toast instead of stacking a copy. opts.tag: a new toast with the same tag replaces
   * the old one (a switch flipped twice says only where it ended). el.setMessage(text) rewrites a shown
   * toast in place (a batch that grows: "Downloaded 12 episodes of …"). On a phone at most TOAST_MAX_PHONE.
   * The dock sits bottom left; while it shows, --toast-space (its height) gives the page that much room
   * below its end and lifts the sticky config bar (queue.css), so no button has to stay under a toast.
   */
  var TOAST_DELAY = 4000;
  var TOAST_ERROR_DELAY = 10000;
  var TOAST_MAX = 3;
  var TOAST_MAX_PHONE = 2;

  function toastMax() {
    var phone = global.matchMedia && global.matchMedia("(max-width: 575.98px)").matches;
    return phone ? TOAST_MAX_PHONE : TOAST_MAX;
  }

  function updateToastSpace() {
    var container = $("#toasts");
    var height = container && container.querySelector(".toast") ? container.offsetHeight : 0;
    document.documentElement.style.setProperty("--toast-space", height + "px");
  }

  function toast(message, kind, opts) {
    kind = kind || "info";
    var tag = (opts && opts.tag) || "";
    var isError = kind === "danger" || kind === "warning";
    var container = $("#toasts");
    if (tag) {
      $all(".toast", container).forEach(function (el) {
        if (el.dataset.tag === tag && el.dataset.message !== message && el.dismiss) el.dismiss();
      });
    }
    var same = $all(".toast", container).filter(function (el) {
      return el.dataset.kind === kind && el.dataset.message === message;
    })[0];
    if (same && same.restartTimer) {
      same.restartTimer();
      return same;
    }
    var shown = $all(".toast", container);
    while (shown.length >= toastMax()) {
      var oldest = shown.filter(function (el) { return el.dataset.error !== "true"; })[0] || shown[0];
      oldest.dismiss();
      shown = $all(".toast", container);
    }
    var darkBg = /^(success|danger|primary|secondary|dark)$/.test(kind);
    var closeBtn = h("button", { type: "button", class: "btn-close me-2 m-auto" + (darkBg ? " btn-close-white" : ""),
      "aria-label": "Close" });
    var el = h("div", {
      class: "toast show align-items-center border-0 text-bg-" + kind,
      role: isError ? "alert" : "status",
      "aria-live": isError ? "assertive" : "polite",
      "aria-atomic": "true",
      dataset: { kind: kind, message: message, error: isError ? "true" : "false", tag: tag },
    }, h("div", { class: "d-flex" }, h("div", { class: "toast-body", text: message }), closeBtn));
    var delay = isError ? TOAST_ERROR_DELAY : TOAST_DELAY;
    var timer = null;
    var held = { pointer: false, focus: false };
    el.dismiss = function () {
      clearTimeout(timer);
      if (el.parentNode) el.parentNode.removeChild(el);
      updateToastSpace();
    };
    el.setMessage = function (text) {
      el.dataset.message = text;
      el.querySelector(".toast-body").textContent = text;
      el.restartTimer();
      updateToastSpace();
    };
    el.restartTimer = function () {
      clearTimeout(timer);
      if (!held.pointer && !held.focus) timer = setTimeout(el.dismiss, delay);
    };
    function hold(what, on) {
      held[what] = on;
      el.restartTimer();
    }
    el.addEventListener("mouseenter", function () { hold("pointer", true); });
    el.addEventListener("mouseleave", function () { hold("pointer", false); });
    el.addEventListener("focusin", function () { hold("focus", true); });
    el.addEventListener("focusout", function (ev) { if (!el.contains(ev.relatedTarget)) hold("focus", false); });
    closeBtn.addEventListener("click", el.dismiss);
    container.appendChild(el);
    el.restartTimer();
    updateToastSpace();
    return el;
  }

  function showError(err, context) {
    if (err && err.status === 401) return; // already on the way to the login page
    var msg = (err && err.message) || String(err);
    toast((context ? context + ": " : "") + msg, "danger");
  }

  /**
   * A Bootstrap modal as a promise; falls back to window.confirm while bootstrap.js is not loaded.
   * Bootstrap ignores hide() while the modal is still fading in: an OK clicked that early (a quick user, a
   * busy machine) would leave the dialog open and the action undone (the restore test's rare "still 3"),
   * and a Cancel after it would then go ahead anyway. So an early OK hides the dialog once it is shown.
   */
  function confirmDialog(title, body, okLabel, okClass) {
    var modalEl = $("#confirm-modal");
    if (!global.bootstrap || !global.bootstrap.Modal) return Promise.resolve(global.confirm(title + "\n" + body));
    $("#confirm-title").textContent = title;
    $("#confirm-body").textContent = body;
    var ok = $("#confirm-ok");
    ok.textContent = okLabel || "OK";
    ok.className = "btn " + (okClass || "btn-primary");
    var modal = global.bootstrap.Modal.getOrCreateInstance(modalEl);
    return new Promise(function (resolve) {
      var answered = false;
      var shown = false;
      function onOk() {
        if (answered) return;
        answered = true;
        if (shown) modal.hide(); // else onShown hides it: hide() during the fade-in is a no-op
      }
      function onShown() {
        modalEl.removeEventListener("shown.bs.modal", onShown);
        shown = true;
        if (answered) modal.hide();
        else ok.focus();
      }
      function onHidden() {
        ok.removeEventListener("click", onOk);
        modalEl.removeEventListener("hidden.bs.modal", onHidden);
        modalEl.removeEventListener("shown.bs.modal", onShown);
        resolve(answered);
      }
      ok.addEventListener("click", onOk);
      modalEl.addEventListener("hidden.bs.modal", onHidden);
      modalEl.addEventListener("shown.bs.modal", onShown);
      modal.show();
    });
  }

  function setBusy(button, busy) {
    if (!button) return;
    button.disabled = !!busy;
    if (busy) button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
  }

  // ---------------------------------------------------------------- live updates (WebSocket)

  var socket = null;
  var authCheckAt = 0;

  function startSocket() {
    if (socket) {
      if (!socket.connected) socket.connect();
      return socket;
    }
    if (!global.io) return null;
    socket = global.io({ token: function () { return Auth.token(); } });
    socket.join("downloads");
    socket.join("download_progress");
    socket.join("scan_progress");
    socket.on("connect", function () { setWsState(true); bus.emit("ws:connect"); });
    socket.on("disconnect", function () { setWsState(false); });
    socket.on("connect_error", function () {
      setWsState(false);
      // A rejected upgrade looks like any other failure; ask the API whether the token is still good.
      if (Date.now() - authCheckAt > 15000 && Auth.token()) {
        authCheckAt = Date.now();
        api("GET", "/api/auth/status").then(function (st) {
          if (st && st.authenticated === false) sessionExpired();
        }, function () { /* offline: keep retrying quietly */ });
      }
    });
    socket.on("scan_progress", Scan.onProgress);
    socket.on("scan_complete", Scan.onComplete);
    socket.on("scan_failed", Scan.onFailed);
    socket.on("queue_status", function (status) { updateQueueBadge(status); });
    socket.on("download_complete", function (data) {
      bus.emit("library:changed", data);
    });
    bus.emit("ws:created", socket);
    return socket;
  }

  function setWsState(connected) {
    var el = $("#ws-state");
    if (!el) return;
    el.textContent = connected ? "● live" : "○ offline";
    el.classList.toggle("text-success", connected);
    el.classList.toggle("text-body-secondary", !connected);
    el.title = connected ? "Live updates connected" : "Live updates disconnected; reconnecting";
  }

  /** A tiny in-page event bus so views can react to socket events without knowing about each other. */
  var bus = {
    handlers: {},
    on: function (name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); },
    emit: function (name, data) { (this.handlers[name] || []).forEach(function (fn) { fn(data); }); },
  };

  function updateQueueBadge(status) {
    var badge = $("#queue-badge");
    if (!badge || !status) return;
    var stats = status.statistics || {};
    // Counts, never list lengths: the lists hold only their first page (`<list>_total` counts them all).
    var count = function (stat, total, list) {
      return stat !== undefined ? stat : total !== undefined ? total : (list || []).length;
    };
    var n = count(stats.active, status.active_downloads_total, status.active_downloads) +
      count(stats.pending, status.pending_queue_total, status.pending_queue);
    badge.textContent = String(n);
    badge.hidden = n === 0;
    badge.setAttribute("aria-label", n + " in queue");
  }

  // ---------------------------------------------------------------- session handling

  function sessionExpired() {
    var wasLoggedIn = !!Auth.token() || !document.body.classList.contains("logged-out");
    Auth.clear();
    if (socket) socket.disconnect();
    document.body.classList.add("logged-out");
    var hash = location.hash || "";
    if (hash && hash.indexOf("#/login") !== 0 && hash.indexOf("#/setup") !== 0) {
      sessionStorage.setItem(RETURN_KEY, hash);
    }
    if (wasLoggedIn && location.hash !== "#/login") location.hash = "#/login";
    else if (location.hash === "#/login") route();
  }

  function loggedIn(answer) {
    Auth.set(answer);
    document.body.classList.remove("logged-out");
    if (socket) socket.reconnect();
    else startSocket();
    var back = sessionStorage.getItem(RETURN_KEY);
    sessionStorage.removeItem(RETURN_KEY);
    location.hash = back && back !== "#/login" && back !== "#/setup" ? back : "#/library";
    refreshQueueBadge();
  }

  function refreshQueueBadge() {
    api("GET", "/api/queue/status").then(updateQueueBadge, function () { /* badge is optional */ });
  }

  // ---------------------------------------------------------------- router

  var views = {};
  var current = { name: null, arg: null };
  var authState = { configured: true };

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
    if (menu && menu.classList.contains("show") && global.bootstrap) {
      global.bootstrap.Collapse.getOrCreateInstance(menu, { toggle: false }).hide();
    }
  }

  function route() {
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
    var name = view ? r.name : "notfound";
    if (current.name && current.name !== name && views[current.name] && views[current.name].hide) {
      views[current.name].hide();
    }
    var changed = current.name !== name || current.arg !== r.arg;
    current = { name: name, arg: r.arg };
    showView(name);
    document.title = (view && view.title ? view.title(r.arg) + " · " : "") + "aniworldd";
    if (view) view.show(r.arg);
    if (changed) {
      var focusTarget = view && view.focus ? view.focus() : $("[data-view='" + name + "'] h1");
      if (focusTarget) focusTarget.focus({ preventScroll: false });
    }
  }

  // ---------------------------------------------------------------- setup + login

  views.setup = {
    title: function () { return "Setup"; },
    focus: function () { return $("#setup-password"); },
    show: function () {},
  };

  views.login = {
    title: function () { return "Log in"; },
    focus: function () { return $("#login-password"); },
    show: function () {
      $("#login-error").hidden = true;
    },
  };

  function initAuthForms() {
    $("#setup-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var pw = $("#setup-password");
      var pw2 = $("#setup-password2");
      var errBox = $("#setup-error");
      errBox.hidden = true;
      pw2.classList.remove("is-invalid");
      if (pw.value !== pw2.value) {
        pw2.classList.add("is-invalid");
        pw2.setAttribute("aria-invalid", "true");
        $("#setup-password2-error").textContent = "The passwords do not match.";
        pw2.setAttribute("aria-describedby", "setup-password2-error");
        pw2.focus();
        return;
      }
      pw2.removeAttribute("aria-invalid");
      var button = ev.submitter || $("button[type=submit]", ev.target);
      setBusy(button, true);
      api("POST", "/api/auth/setup", { password: pw.value }, { noAuthRedirect: true })
        .then(function (answer) {
          authState.configured = true;
          if (answer && answer.access_token) return answer;
          return api("POST", "/api/auth/login", { password: pw.value }, { noAuthRedirect: true });
        })
        .then(function (answer) {
          pw.value = "";
          pw2.value = "";
          toast("Master password set.", "success");
          loggedIn(answer);
        })
        .catch(function (err) {
          if (err.status === 409) {
            // Someone else finished the setup meanwhile.
            authState.configured = true;
            location.hash = "#/login";
            return;
          }
          errBox.textContent = err.message;
          errBox.hidden = false;
          pw.focus();
        })
        .then(function () { setBusy(button, false); });
    });

    $("#login-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var pw = $("#login-password");
      var errBox = $("#login-error");
      errBox.hidden = true;
      var button = ev.submitter || $("button[type=submit]", ev.target);
      setBusy(button, true);
      api("POST", "/api/auth/login", { password: pw.value }, { noAuthRedirect: true })
        .then(function (answer) {
          pw.value = "";
          loggedIn(answer);
        })
        .catch(function (err) {
          var msg = err.message;
          if (err.status === 401) msg = "Wrong password.";
          else if (err.status === 429) {
            var wait = err.headers && err.headers.get("Retry-After");
            msg = "Too many attempts." + (wait ? " Try again in " + Math.ceil(Number(wait)) + " s." : "");
          } else if (err.status === 409) {
            authState.configured = false;
            location.hash = "#/setup";
            return;
          }
          errBox.textContent = msg;
          errBox.hidden = false;
          pw.select();
          pw.focus();
        })
        .then(function () { setBusy(button, false); });
    });

    $("#logout-btn").addEventListener("click", function () {
      var done = function () {
        Auth.clear();
        if (socket) socket.disconnect();
        document.body.classList.add("logged-out");
        sessionStorage.removeItem(RETURN_KEY);
        location.hash = "#/login";
        toast("Logged out.", "secondary");
      };
      api("POST", "/api/auth/logout", undefined, { noAuthRedirect: true }).then(done, done);
    });
  }

  function isTextEntry(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset|range|color|file)$/i.test(el.type);
  }

  // ---------------------------------------------------------------- library

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

  var Library = {
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

  views.library = {
    title: function () { return "Library"; },
    show: function () {
      // Re-use what is loaded for an instant page, then refresh in the background.
      if (Library.items.length) Library.render();
      Library.load();
      Unmatched.load();
    },
  };

  function initLibrary() {
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
      var target = current.name === "search" ? $("#search-q") : current.name === "library" ? q : null;
      if (target) {
        ev.preventDefault();
        target.focus();
      }
    });
    bus.on("library:changed", debounce(function () {
      if (current.name === "library") {
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

  // ---------------------------------------------------------------- series detail

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
      if (folder && bodyEl && global.bootstrap && global.bootstrap.Modal) {
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
      if (current.name !== "series" || this.key !== data.key || this.removedKey === data.key) return;
      toast((data.name || data.key) + " was removed from the library.", "info");
      location.hash = "#/library";
    },
    /** The list was re-rendered (or the button disabled): keep keyboard users where they were. */
    restoreFocus: function (button) {
      if (current.name !== "series" || (document.activeElement && document.activeElement !== document.body)) return;
      var target = null;
      if (button && button.dataset.downloadSeason !== undefined) {
        var card = $(".season-card[data-season='" + button.dataset.downloadSeason + "']");
        target = card && (card.querySelector("button:not([disabled])") || card.querySelector("h2"));
      }
      target = target || (button && button.isConnected && !button.disabled ? button : $("#series-title"));
      if (target) target.focus();
    },
  };

  views.series = {
    title: function (key) { return key; },
    show: function (key) {
      if (!key) {
        location.replace("#/library");
        return;
      }
      Series.load(key);
    },
  };

  function initSeries() {
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
    bus.on("ws:created", function (socket) {
      socket.on("series_removed", function (data) { Series.onRemoved(data); });
    });
    var reload = debounce(function () {
      if (current.name === "series" && Series.key) Series.load(Series.key);
    }, 400);
    bus.on("library:changed", function (data) {
      if (!data || !data.key || data.key === Series.key) reload();
    });
    bus.on("queue:changed", function (data) {
      if (!data || !data.key || data.key === Series.key) reload();
    });
  }

  // ---------------------------------------------------------------- search & add

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

  views.search = {
    title: function () { return "Search & add"; },
    show: function () {},
  };

  function initSearch() {
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

  // ---------------------------------------------------------------- scan

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

  // ---------------------------------------------------------------- config

  var SECRET_RE = /(password|secret|token|api_key)$/i;
  /** What GET /api/config shows instead of a secret (api/config.py SECRET_PLACEHOLDER). */
  var SECRET_PLACEHOLDER = "********";
  /** Sections in the order a user goes through them; unknown (newer) sections follow alphabetically. */
  var SECTION_ORDER = ["library", "downloads", "provider", "notifications", "mqtt", "server", "database", "auth", "logging"];
  var ACRONYMS = { api: "API", ttl: "TTL", url: "URL", mqtt: "MQTT", nfo: "NFO", tls: "TLS", ca: "CA", gb: "GB", id: "ID", cors: "CORS" };

  var Config = {
    doc: null,
    effective: null,
    fields: {}, // path -> {input, kind, initial}
    loads: 0, // the newest load's number: an older answer arriving late must not re-render over it
    load: function () {
      var self = this;
      var box = $("#config-fields");
      var mine = ++this.loads;
      if (!this.doc) clear(box).appendChild(h("div", { class: "skeleton-row", "aria-hidden": "true" }));
      return Promise.all([
        api("GET", "/api/config"),
        api("GET", "/api/config/backups").catch(function (err) { showError(err, "Backups"); return []; }),
      ]).then(function (answers) {
        if (mine !== self.loads) return;
        var cfg = answers[0] || {};
        self.doc = cfg.config && typeof cfg.config === "object" ? cfg.config : {};
        self.effective = cfg.effective && typeof cfg.effective === "object" ? cfg.effective : self.doc;
        self.render();
        self.renderBackups(Array.isArray(answers[1]) ? answers[1] : (answers[1] && answers[1].backups) || []);
      }).catch(function (err) {
        clear(box);
        showError(err, "Loading the configuration failed");
      });
    },
    /** The value shown: what the user's file says, else the effective (default) value. */
    shownValue: function (path) {
      var fromDoc = getPath(this.doc, path);
      return fromDoc.found ? fromDoc.value : getPath(this.effective, path).value;
    },
    /** The option list (GET /api/config/schema), fetched once; without it the page renders plain fields. */
    schema: null,
    schemaLoading: null,
    advancedOpen: false,
    loadSchema: function () {
      var self = this;
      if (this.schema) return Promise.resolve(this.schema);
      if (!this.schemaLoading) {
        this.schemaLoading = api("GET", "/api/config/schema").then(function (s) {
          self.schema = s && Array.isArray(s.options) ? s : null;
          return self.schema;
        }, function () {
          self.schemaLoading = null; // tried again on the next visit; plain fields meanwhile
          return null;
        });
      }
      return this.schemaLoading;
    },
    render: function () {
      var self = this;
      this.fields = {};
      var box = clear($("#config-fields"));
      var eff = this.effective || {};
      if (!this.schema) {
        this.renderPlain(box, eff);
        this.clearErrors();
        return;
      }
      var byPath = {};
      this.schema.options.forEach(function (o) { byPath[o.path] = o; });
      // Settings of the running daemon the option list does not know (a newer key): plain fields under Advanced.
      var extra = {};
      Object.keys(eff).forEach(function (k) {
        var paths = isPlainObject(eff[k]) ? self.leafPaths(eff[k], [k]) : [[k]];
        paths.forEach(function (parts) {
          for (var i = parts.length; i > 0; i--) if (byPath[parts.slice(0, i).join(".")]) return;
          var section = parts.length > 1 ? parts[0] : "general";
          (extra[section] = extra[section] || []).push(parts);
        });
      });
      var sections = this.schema.sections.slice();
      Object.keys(extra).forEach(function (id) {
        if (!sections.some(function (s) { return s.id === id; })) sections.push({ id: id, title: humanize(id), description: "" });
      });
      var essentials = h("div", { id: "config-essentials" });
      var advanced = h("div", { class: "config-advanced-body pt-2" });
      var inAdvanced = 0;
      var advancedTitles = [];
      sections.forEach(function (s) {
        var opts = self.schema.options.filter(function (o) { return o.section === s.id; });
        var first = opts.filter(function (o) { return o.essential; });
        var rest = opts.filter(function (o) { return !o.essential; });
        if (first.length) {
          essentials.appendChild(self.section(s.id, s.title, first.map(function (o) { return self.optionField(o); }), s.description));
        }
        var more = rest.map(function (o) { return self.optionField(o); })
          .concat((extra[s.id] || []).map(function (parts) { return self.field(parts); }));
        inAdvanced += more.length;
        if (more.length) advancedTitles.push(s.title);
        if (more.length) advanced.appendChild(self.section("adv-" + s.id, s.title, more, first.length ? "" : s.description));
      });
      var details = h("details", { id: "config-advanced", class: "config-advanced card mb-3" },
        h("summary", { class: "card-header", id: "config-advanced-summary" },
          h("span", { class: "h6", text: "Advanced settings" }),
          h("span", { class: "text-body-secondary small ms-2", text: inAdvanced + " more settings: " + advancedTitles.join(", ") })),
        h("div", { class: "card-body" }, advanced));
      details.open = this.advancedOpen;
      details.addEventListener("toggle", function () { self.advancedOpen = details.open; });
      box.appendChild(essentials);
      box.appendChild(details);
      this.clearErrors();
    },
    /** Without the option list: every setting of the effective config as a plain field, by section. */
    renderPlain: function (box, eff) {
      var self = this;
      var general = [];
      var sections = [];
      Object.keys(eff).forEach(function (k) {
        if (isPlainObject(eff[k])) sections.push(k);
        else general.push(k);
      });
      var plain = function (paths) { return paths.map(function (p) { return self.field(p); }); };
      if (general.length) box.appendChild(this.section("general", "General", plain(general.map(function (k) { return [k]; }))));
      sections.sort(function (a, b) {
        var ia = SECTION_ORDER.indexOf(a);
        var ib = SECTION_ORDER.indexOf(b);
        return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
      });
      sections.forEach(function (name) {
        box.appendChild(self.section(name, humanize(name), plain(self.leafPaths(eff[name], [name]))));
      });
    },
    leafPaths: function (obj, prefix) {
      var self = this;
      var out = [];
      Object.keys(obj).forEach(function (k) {
        var path = prefix.concat([k]);
        if (isPlainObject(obj[k]) && Object.keys(obj[k]).length) out = out.concat(self.leafPaths(obj[k], path));
        else out.push(path);
      });
      return out;
    },
    section: function (id, title, children, description) {
      var headingId = "cfg-section-" + id;
      return h("fieldset", { class: "card mb-3 config-section", "aria-labelledby": headingId },
        h("div", { class: "card-header" }, h("legend", { class: "h6 mb-0 float-none", id: headingId, text: title }),
          description ? h("p", { class: "small text-body-secondary mb-0", text: description }) : null),
        h("div", { class: "card-body row g-3" }, children));
    },
    field: function (parts) {
      var path = parts.join(".");
      var id = "cfg-" + path.replace(/[^a-z0-9_]+/gi, "-");
      var effValue = getPath(this.effective, path).value;
      var value = this.shownValue(path);
      var kind = typeof effValue === "boolean" ? "bool"
        : typeof effValue === "number" ? "number"
        : Array.isArray(effValue) ? (effValue.some(isPlainObject) || /(webhooks|apprise)$/.test(path) ? "json" : "list")
        : isPlainObject(effValue) ? "json"
        : "text";
      var label = humanize(parts[parts.length - 1]);
      var errorId = id + "-error";
      var helpId = id + "-help";
      var input;
      var initial;
      if (kind === "bool") {
        initial = value ? "true" : "false";
        input = h("input", { class: "form-check-input", type: "checkbox", role: "switch", id: id, name: path,
          "aria-describedby": helpId });
        input.checked = !!value;
        var wrap = h("div", { class: "col-12 col-md-6 config-field", dataset: { path: path } },
          h("div", { class: "form-check form-switch" }, input,
            h("label", { class: "form-check-label", for: id, text: label }),
            h("div", { class: "invalid-feedback", id: errorId })),
          h("div", { class: "form-text", id: helpId }, h("code", { text: path })));
        this.fields[path] = { input: input, kind: kind, initial: initial, effValue: effValue };
        return wrap;
      }
      if (kind === "list" || kind === "json") {
        // A list option may be written as one value in the file (provider.sto_url: https://...).
        initial = kind === "list" ? (value == null ? [] : [].concat(value)).map(String).join("\n")
          : JSON.stringify(value === undefined ? null : value, null, 2);
        input = h("textarea", { class: "form-control font-monospace", id: id, name: path, rows: Math.min(8, Math.max(2, initial.split("\n").length)),
          "aria-describedby": helpId, spellcheck: "false" });
        input.value = initial;
      } else {
        initial = value === null || value === undefined ? "" : String(value);
        var secret = SECRET_RE.test(path);
        input = h("input", {
          class: "form-control", id: id, name: path, type: secret ? "password" : "text",
          inputmode: kind === "number" ? "decimal" : null, autocomplete: secret ? "new-password" : "off",
          spellcheck: "false", "aria-describedby": helpId,
          placeholder: value === null || value === undefined ? "(not set)" : null,
        });
        input.value = initial;
      }
      this.fields[path] = { input: input, kind: kind, initial: initial, effValue: effValue };
      var hint = kind === "list" ? "One per line." : kind === "json" ? "JSON." : null;
      if (typeof value === "string" && value.indexOf(SECRET_PLACEHOLDER) >= 0) {
        // The API never sends secrets; the placeholder sent back keeps the stored value.
        hint = "Stored secret hidden as " + SECRET_PLACEHOLDER + "; leave it to keep it.";
      }
      var wide = kind === "list" || kind === "json" || /naming$|url$|user_agent$|roots$/.test(path);
      return h("div", { class: (wide ? "col-12" : "col-12 col-md-6") + " config-field", dataset: { path: path } },
        h("label", { class: "form-label", for: id, text: label }),
        input,
        h("div", { class: "invalid-feedback", id: errorId }),
        h("div", { class: "form-text", id: helpId }, h("code", { text: path }), hint ? " · " + hint : ""));
    },
    /** One option of the option list with the control its type asks for and its description as help. */
    optionField: function (o) {
      var path = o.path;
      var parts = path.split(".");
      var id = "cfg-" + path.replace(/[^a-z0-9_]+/gi, "-");
      var helpId = id + "-help";
      var errorId = id + "-error";
      var effValue = getPath(this.effective, path).value;
      var value = this.shownValue(path);
      var label = humanize(parts[parts.length - 1]);
      var isList = o.type === "list";
      var hasObjects = Array.isArray(value) && value.some(isPlainObject);
      var kind = o.type === "bool" ? "bool"
        : o.type === "enum" ? "select"
        : o.type === "int" || o.type === "float" || o.type === "duration" ? "number"
        : isList && o.item && o.item.type === "object" ? "objects"
        : isList && Array.isArray(o.choices) ? "order"
        : isList ? (hasObjects ? "json" : "list")
        : o.type === "mapping" ? "json"
        : "text";
      var hint = kind === "list" ? "One per line." : kind === "json" ? "JSON." : "";
      if (typeof value === "string" && value.indexOf(SECRET_PLACEHOLDER) >= 0) {
        hint = "Stored secret hidden as " + SECRET_PLACEHOLDER + "; leave it to keep it.";
      }
      var help = h("div", { class: "form-text config-help", id: helpId },
        h("span", { class: "config-description", text: o.description || "" }),
        h("span", { class: "config-meta d-block" },
          h("code", { text: path }),
          o.restart ? " · applies after a restart" : " · applies at once",
          this.defaultText(o),
          hint ? " · " + hint : ""));
      var feedback = h("div", { class: "invalid-feedback", id: errorId });
      var wrapClass = "config-field " + (kind === "bool" || kind === "select" || kind === "number" ? "col-12 col-md-6" : "col-12");
      if (kind === "text" && !/naming$|url$|user_agent$|dir$|file$|proxy$/.test(path)) wrapClass = "config-field col-12 col-md-6";
      var wrap = h("div", { class: wrapClass, dataset: { path: path, kind: kind } });
      var f = { kind: kind, effValue: effValue };
      if (kind === "bool") {
        f.initial = value ? "true" : "false";
        f.input = h("input", { class: "form-check-input", type: "checkbox", role: "switch", id: id, name: path,
          "aria-describedby": helpId });
        f.input.checked = !!value;
        wrap.appendChild(h("div", { class: "form-check form-switch" }, f.input,
          h("label", { class: "form-check-label", for: id, text: label }), feedback));
        wrap.appendChild(help);
      } else if (kind === "order") {
        this.orderEditor(o, id, label, value, f, wrap, help, feedback);
      } else if (kind === "objects") {
        this.objectsEditor(o, id, label, value, f, wrap, help, feedback);
      } else {
        wrap.appendChild(h("label", { class: "form-label", for: id, text: label }));
        if (kind === "select") {
          var choices = (o.choices || []).map(String);
          var current = value === null || value === undefined ? "" : String(value);
          if (current && choices.indexOf(current) < 0) choices = [current].concat(choices); // as written (e.g. "info")
          f.input = h("select", { class: "form-select", id: id, name: path, "aria-describedby": helpId },
            choices.map(function (c) { return h("option", { value: c, text: c }); }));
          f.input.value = current;
          f.initial = current;
        } else if (kind === "list" || kind === "json") {
          // A list option may be written as one value in the file (provider.sto_url: https://...).
          f.initial = kind === "list" ? (value == null ? [] : [].concat(value)).map(String).join("\n")
            : JSON.stringify(value === undefined ? null : value, null, 2);
          f.input = h("textarea", { class: "form-control font-monospace", id: id, name: path, spellcheck: "false",
            rows: Math.min(8, Math.max(2, f.initial.split("\n").length)), "aria-describedby": helpId });
          f.input.value = f.initial;
        } else {
          // Numbers: a duration written as "10m" in the file is shown in seconds, as the daemon runs it.
          var shown = kind === "number" && typeof value !== "number" && typeof effValue === "number" ? effValue : value;
          f.initial = shown === null || shown === undefined ? "" : String(shown);
          var secret = o.secret_part === "value";
          f.input = h("input", {
            class: "form-control", id: id, name: path,
            type: kind === "number" ? "number" : secret ? "password" : "text",
            step: kind === "number" ? (o.type === "int" ? "1" : "any") : null,
            min: kind === "number" && o.min !== undefined ? o.min : null,
            max: kind === "number" && o.max !== undefined ? o.max : null,
            inputmode: kind === "number" ? (o.type === "int" ? "numeric" : "decimal") : null,
            autocomplete: secret ? "new-password" : "off", spellcheck: "false", "aria-describedby": helpId,
            placeholder: shown === null || shown === undefined ? (o.type === "rate" ? "no limit" : "(not set)") : null,
          });
          f.input.value = f.initial;
        }
        if (o.unit) {
          wrap.appendChild(h("div", { class: "input-group has-validation" }, f.input,
            h("span", { class: "input-group-text", id: id + "-unit", text: o.unit }), feedback));
          f.input.setAttribute("aria-describedby", helpId + " " + id + "-unit");
        } else {
          wrap.appendChild(f.input);
          wrap.appendChild(feedback);
        }
        wrap.appendChild(help);
      }
      this.fields[path] = f;
      return wrap;
    },
    /** " · default X" for the help line (lists and mappings: too long to be useful there). */
    defaultText: function (o) {
      var d = o["default"];
      if (Array.isArray(d) || isPlainObject(d) || o.secret) return "";
      if (d === null || d === undefined) return " · default: not set";
      if (typeof d === "boolean") return " · default: " + (d ? "on" : "off");
      return " · default: " + String(d) + (o.unit && typeof d === "number" ? " " + o.unit : "");
    },
    /**
     * A list of known values in preference order (downloads.language, downloads.hosters): move up/down,
     * remove, add one of the values not in it. Buttons only, so it works from the keyboard; after a move
     * the focus stays on the moved entry's button.
     */
    orderEditor: function (o, id, label, value, f, wrap, help, feedback) {
      var items = (value === null || value === undefined ? [] : [].concat(value)).map(String);
      var nice = /language$/.test(o.path)
        ? function (v) { return LANGUAGE_LABELS[v] ? LANGUAGE_LABELS[v] + " (" + v + ")" : v; }
        : function (v) { return v; };
      var labelId = id + "-label";
      var list = h("ol", { class: "list-group list-group-numbered config-order mb-2", id: id + "-list" });
      var addSelect = h("select", { class: "form-select form-select-sm", id: id + "-add", "aria-label": "Add to " + label });
      var addBtn = h("button", { type: "button", class: "btn btn-sm btn-outline-secondary", text: "Add" });
      var addRow = h("div", { class: "d-flex gap-2 align-items-center config-order-add" }, addSelect, addBtn);
      var group = h("div", { id: id, class: "config-order-editor", role: "group", tabindex: "-1",
        "aria-labelledby": labelId, "aria-describedby": help.id });
      var draw = function (focusValue, focusAction) {
        clear(list);
        items.forEach(function (v, i) {
          var btn = function (action, text, aria, disabled) {
            return h("button", { type: "button", class: "btn btn-sm btn-outline-secondary", text: text,
              "aria-label": aria, disabled: disabled, dataset: { action: action, value: v } });
          };
          list.appendChild(h("li", { class: "list-group-item d-flex align-items-center gap-2", dataset: { value: v } },
            h("span", { class: "flex-grow-1", text: nice(v) }),
            btn("up", "↑", "Move " + v + " up", i === 0),
            btn("down", "↓", "Move " + v + " down", i === items.length - 1),
            btn("remove", "✕", "Remove " + v, items.length <= 1)));
        });
        clear(addSelect);
        var rest = (o.choices || []).filter(function (c) { return items.indexOf(c) < 0; });
        rest.forEach(function (c) { addSelect.appendChild(h("option", { value: c, text: nice(c) })); });
        addRow.hidden = !rest.length; // every known value is in the list already
        if (focusValue !== undefined) {
          var target = list.querySelector('[data-value="' + cssEscape(focusValue) + '"] [data-action="' + focusAction + '"]');
          if (!target || target.disabled) target = list.querySelector('[data-value="' + cssEscape(focusValue) + '"] button:not([disabled])');
          (target || list.querySelector("button:not([disabled])") || group).focus();
        }
      };
      list.addEventListener("click", function (ev) {
        var btn = ev.target.closest("button[data-action]");
        if (!btn || btn.disabled) return;
        var v = btn.dataset.value;
        var i = items.indexOf(v);
        if (btn.dataset.action === "remove") {
          items.splice(i, 1);
          draw();
          var next = list.querySelectorAll("li")[Math.min(i, items.length - 1)];
          ((next && next.querySelector("button:not([disabled])")) || addSelect).focus();
          announce("Removed " + v + ".");
          return;
        }
        var j = btn.dataset.action === "up" ? i - 1 : i + 1;
        if (j < 0 || j >= items.length) return;
        items[i] = items[j];
        items[j] = v;
        draw(v, btn.dataset.action);
        announce(v + " moved to place " + (j + 1) + " of " + items.length + ".");
      });
      addBtn.addEventListener("click", function () {
        var v = addSelect.value;
        if (!v || items.indexOf(v) >= 0) return;
        items.push(v);
        draw(v, "up");
        announce("Added " + v + " at place " + items.length + ".");
      });
      draw();
      f.initial = JSON.stringify(items);
      f.input = group;
      f.read = function () { return items.slice(); };
      wrap.appendChild(h("div", { class: "form-label", id: labelId, text: label }));
      group.appendChild(list);
      group.appendChild(addRow);
      wrap.appendChild(group);
      wrap.appendChild(feedback);
      wrap.appendChild(help);
    },
    /**
     * A list of small objects (notifications.webhooks / apprise): a row per target with its URL, the
     * events as checkboxes and the other fields of the item schema; add and remove rows. Keys the editor
     * does not know stay as they were, and defaults the user did not change are not written out.
     */
    objectsEditor: function (o, id, label, value, f, wrap, help, feedback) {
      var fields = (o.item && o.item.fields) || [];
      var noun = /webhooks$/.test(o.path) ? "Webhook" : /apprise$/.test(o.path) ? "Apprise target" : "Item";
      var rows = (Array.isArray(value) ? value : []).map(function (r) {
        return { original: isPlainObject(r) ? r : { url: String(r) }, inputs: {} };
      });
      var list = h("div", { class: "config-objects" });
      var group = h("div", { id: id, class: "config-objects-editor", role: "group", tabindex: "-1",
        "aria-labelledby": id + "-label", "aria-describedby": help.id });
      var addBtn = h("button", { type: "button", class: "btn btn-sm btn-outline-secondary", id: id + "-add", text: "Add " + noun.toLowerCase() });
      var sameSet = function (a, b) { return a.length === b.length && a.every(function (x) { return b.indexOf(x) >= 0; }); };
      var draw = function () {
        // Edits typed so far survive a redraw: read them into the originals first.
        rows.forEach(function (r) { if (Object.keys(r.inputs).length) r.original = readRow(r); });
        clear(list);
        rows.forEach(function (r, i) {
          var rid = id + "-" + i;
          var body = [];
          r.inputs = {};
          fields.forEach(function (fd) {
            var fid = rid + "-" + fd.name;
            var cur = r.original[fd.name];
            if (fd.type === "list" && Array.isArray(fd.choices)) {
              var on = Array.isArray(cur) ? cur.map(String) : (fd["default"] || []);
              r.inputs[fd.name] = fd.choices.map(function (c) {
                var box = h("input", { class: "form-check-input", type: "checkbox", id: fid + "-" + c, value: c });
                box.checked = on.indexOf(c) >= 0;
                return box;
              });
              body.push(h("fieldset", { class: "col-12" },
                h("legend", { class: "form-label fs-6 mb-1", text: humanize(fd.name) }),
                h("div", { class: "d-flex flex-wrap gap-3" }, r.inputs[fd.name].map(function (box) {
                  return h("div", { class: "form-check" }, box, h("label", { class: "form-check-label", for: box.id, text: humanize(box.value) }));
                }))));
            } else {
              var numeric = fd.type === "int" || fd.type === "float" || fd.type === "duration";
              // Text, not type=number: a timeout written as "10s" in the file must survive unchanged.
              var input = h("input", { class: "form-control", id: fid, type: "text",
                inputmode: numeric ? "decimal" : null, spellcheck: "false", autocomplete: "off",
                required: fd.required || null, dataset: { numeric: numeric ? "1" : "" },
                placeholder: fd["default"] !== undefined && fd["default"] !== null ? String(fd["default"]) : null });
              input.value = cur === undefined || cur === null ? "" : String(cur);
              r.inputs[fd.name] = input;
              var control = fd.unit ? h("div", { class: "input-group" }, input, h("span", { class: "input-group-text", text: fd.unit })) : input;
              body.push(h("div", { class: fd.name === "url" ? "col-12 col-md-9" : "col-12 col-md-3" },
                h("label", { class: "form-label", for: fid, text: fd.name === "url" ? "URL" : humanize(fd.name) }), control));
            }
          });
          list.appendChild(h("fieldset", { class: "border rounded p-2 mb-2 config-object", dataset: { index: i } },
            h("legend", { class: "fs-6 float-none w-auto px-1 mb-0", text: noun + " " + (i + 1) }),
            h("div", { class: "row g-2" }, body),
            h("button", { type: "button", class: "btn btn-sm btn-outline-danger mt-2", dataset: { remove: i },
              text: "Remove", "aria-label": "Remove " + noun.toLowerCase() + " " + (i + 1) })));
        });
        if (!rows.length) list.appendChild(h("p", { class: "small text-body-secondary mb-2", text: "None." }));
      };
      var readRow = function (r) {
        var out = JSON.parse(JSON.stringify(r.original));
        fields.forEach(function (fd) {
          var input = r.inputs[fd.name];
          if (!input) return;
          if (Array.isArray(input)) {
            var on = input.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
            if (Array.isArray(r.original[fd.name]) || !sameSet(on, fd["default"] || [])) out[fd.name] = on;
            return;
          }
          var t = input.value.trim();
          if (t === "") {
            if (fd.required) out[fd.name] = "";
            else delete out[fd.name];
          } else {
            out[fd.name] = input.dataset.numeric && /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
          }
        });
        return out;
      };
      list.addEventListener("click", function (ev) {
        var btn = ev.target.closest("button[data-remove]");
        if (!btn) return;
        var i = Number(btn.dataset.remove);
        draw(); // keep what was typed in the other rows
        rows.splice(i, 1);
        draw();
        var next = list.querySelectorAll("button[data-remove]")[Math.min(i, rows.length - 1)];
        (next || addBtn).focus();
        announce(noun + " " + (i + 1) + " removed.");
      });
      addBtn.addEventListener("click", function () {
        draw();
        rows.push({ original: {}, inputs: {} });
        draw();
        var url = $("#" + cssEscape(id + "-" + (rows.length - 1) + "-url"));
        if (url) url.focus();
      });
      draw();
      f.read = function () { return rows.map(readRow); };
      f.initial = JSON.stringify(f.read());
      f.input = group;
      wrap.appendChild(h("div", { class: "form-label", id: id + "-label", text: label }));
      group.appendChild(list);
      group.appendChild(addBtn);
      wrap.appendChild(group);
      wrap.appendChild(feedback);
      wrap.appendChild(help);
    },
    /** Read one field back; returns {ok, value} or {ok: false, message} for JSON that does not parse. */
    readField: function (f) {
      if (f.read) {
        var picked = f.read(); // the list editors (order, objects) keep their own state
        return { ok: true, value: picked, raw: JSON.stringify(picked) };
      }
      var raw = f.kind === "bool" ? (f.input.checked ? "true" : "false") : f.input.value;
      if (f.kind === "bool") return { ok: true, value: f.input.checked, raw: raw };
      if (f.kind === "number") {
        var t = raw.trim();
        if (t === "") return { ok: true, value: null, raw: raw };
        // Plain numbers are sent as numbers; anything else ("30s", "5M", typos) goes as typed and the
        // server's validation answers with a message for this field.
        return { ok: true, value: /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t, raw: raw };
      }
      if (f.kind === "list") {
        var items = raw.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
        var numeric = Array.isArray(f.effValue) && f.effValue.length && typeof f.effValue[0] === "number";
        return { ok: true, value: numeric ? items.map(function (s) { return isFinite(s) ? Number(s) : s; }) : items, raw: raw };
      }
      if (f.kind === "json") {
        try {
          return { ok: true, value: raw.trim() ? JSON.parse(raw) : null, raw: raw };
        } catch (e) {
          return { ok: false, message: "not valid JSON: " + e.message, raw: raw };
        }
      }
      if (raw === "" && (f.effValue === null || f.effValue === undefined)) return { ok: true, value: null, raw: raw };
      return { ok: true, value: raw, raw: raw };
    },
    /** The user's document with only the fields the user changed set: the file stays as small as it was. */
    buildDocument: function () {
      var doc = JSON.parse(JSON.stringify(this.doc || {}));
      var local = [];
      var self = this;
      Object.keys(this.fields).forEach(function (path) {
        var f = self.fields[path];
        var r = self.readField(f);
        if (!r.ok) {
          local.push({ path: path, message: r.message });
          return;
        }
        if (r.raw !== f.initial) setPath(doc, path, r.value);
      });
      return { doc: doc, local: local };
    },
    clearErrors: function () {
      $all("#config-form .is-invalid").forEach(function (el) {
        el.classList.remove("is-invalid");
        el.removeAttribute("aria-invalid");
        var errId = el.id + "-error";
        var describedBy = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (x) { return x && x !== errId; });
        el.setAttribute("aria-describedby", describedBy.join(" "));
      });
      $all("#config-form .invalid-feedback").forEach(function (el) { el.textContent = ""; });
      $("#config-errors").hidden = true;
    },
    /** Map the server's issues ([{path, line, message}]) onto the fields; unknown paths go to the top box. */
    showErrors: function (errors) {
      var self = this;
      this.clearErrors();
      var general = [];
      var first = null;
      errors.forEach(function (e) {
        var path = normalizePath(e.path);
        var field = self.fieldFor(path);
        var text = e.message || "invalid";
        if (!field) {
          // Only here does the line help: the YAML line of the file as it would be saved.
          general.push((path ? path + ": " : "") + text + (e.line ? " (line " + e.line + ")" : ""));
          return;
        }
        var input = field.input;
        var fb = $("#" + cssEscape(input.id + "-error"));
        var extra = path !== field.path && path.indexOf(field.path) === 0 ? path.slice(field.path.length).replace(/^\./, "") + ": " : "";
        fb.textContent = (fb.textContent ? fb.textContent + "; " : "") + extra + text;
        input.classList.add("is-invalid");
        input.setAttribute("aria-invalid", "true");
        var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (ids.indexOf(fb.id) < 0) ids.unshift(fb.id);
        input.setAttribute("aria-describedby", ids.join(" "));
        var folded = input.closest("details");
        if (folded && !folded.open) folded.open = true; // a problem under "Advanced" must be seen
        if (!first) first = input;
      });
      var box = $("#config-errors");
      clear(box);
      var n = errors.length;
      box.appendChild(h("strong", { text: n === 1 ? "One problem; nothing was saved." : n + " problems; nothing was saved." }));
      if (general.length) box.appendChild(h("ul", { class: "mb-0 mt-1" }, general.map(function (t) { return h("li", { text: t }); })));
      box.hidden = false;
      if (first) {
        first.focus();
      } else {
        box.setAttribute("tabindex", "-1");
        box.focus();
      }
      announce(box.textContent);
    },
    fieldFor: function (path) {
      var parts = path.split(".");
      for (var i = parts.length; i > 0; i--) {
        var p = parts.slice(0, i).join(".");
        if (this.fields[p]) return { path: p, input: this.fields[p].input };
      }
      return null;
    },
    save: function (button) {
      var self = this;
      var built = this.buildDocument();
      hideSavedNote();
      if (built.local.length) {
        this.showErrors(built.local);
        return Promise.resolve();
      }
      // The answer re-renders the form: an edit made while the save is in flight would be lost.
      var fields = $("#config-fields");
      fields.disabled = true;
      setBusy(button, true);
      var unlock = function () { fields.disabled = false; };
      return api("PUT", "/api/config", built.doc).finally(unlock).then(function (answer) {
        if (answer && answer.config && answer.effective) {
          self.loads++; // newer than any load still in flight
          self.doc = answer.config;
          self.effective = answer.effective;
          self.render();
        } else {
          return self.load().then(function () { return answer; });
        }
        return answer;
      }).then(function (answer) {
        var ok = $("#config-saved");
        var pending = (answer && Array.isArray(answer.restart_required)) ? answer.restart_required : [];
        ok.textContent = pending.length
          ? "Saved. The previous file was kept as a backup. Restart the daemon to apply: " + pending.join(", ") + "."
          : "Saved and applied. The previous file was kept as a backup.";
        ok.hidden = false;
        toast(pending.length ? "Configuration saved; some changes apply after a restart." : "Configuration saved.",
          pending.length ? "warning" : "success");
        return api("GET", "/api/config/backups").then(function (b) {
          self.renderBackups(Array.isArray(b) ? b : (b && b.backups) || []);
        }, function () {});
      }).catch(function (err) {
        var errors = err.details && (err.details.errors || err.details.issues);
        if ((err.status === 422 || err.status === 400) && Array.isArray(errors) && errors.length) {
          self.showErrors(errors);
        } else if (err.status !== 401) {
          var box = $("#config-errors");
          box.textContent = err.message;
          box.hidden = false;
        }
      }).then(function () { setBusy(button, false); });
    },
    renderBackups: function (backups) {
      var list = clear($("#config-backups"));
      if (!backups.length) {
        list.appendChild(h("div", { class: "list-group-item text-body-secondary", text: "No backups yet." }));
        return;
      }
      backups.forEach(function (b) {
        var name = typeof b === "string" ? b : b.name;
        var when = typeof b === "string" ? "" : fmtDate(b.created_at || b.modified || b.mtime);
        list.appendChild(h("div", { class: "list-group-item d-flex flex-wrap align-items-center gap-2", dataset: { backup: name } },
          h("div", { class: "flex-grow-1 min-w-0" },
            h("code", { class: "text-break", text: name }),
            h("div", { class: "small text-body-secondary", text: [when, b.size ? fmtBytes(b.size) : ""].filter(Boolean).join(" · ") })),
          h("button", { type: "button", class: "btn btn-sm btn-outline-secondary", dataset: { restore: name },
            "aria-label": "Restore " + name, text: "Restore" })));
      });
    },
    restore: function (name, button) {
      var self = this;
      return confirmDialog("Restore this backup?", "The current configuration is replaced by " + name +
        " (the current file is kept as a new backup).", "Restore", "btn-warning").then(function (yes) {
        if (!yes) return;
        hideSavedNote();
        setBusy(button, true);
        return api("POST", "/api/config/backups/" + encodeURIComponent(name) + "/restore", {}).then(function () {
          toast("Restored " + name + ".", "success");
          return self.load();
        }).catch(function (err) {
          var errors = err.details && err.details.errors;
          if (Array.isArray(errors) && errors.length) {
            toast("The backup is not valid: " + errors.map(function (e) { return normalizePath(e.path) + ": " + e.message; }).join("; "), "danger");
          } else {
            showError(err, "Restore failed");
          }
        }).then(function () { setBusy(button, false); });
      });
    },
  };

  function isPlainObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function humanize(name) {
    var words = String(name).split("_").map(function (w) { return ACRONYMS[w] || w; });
    var s = words.join(" ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  /** "downloads.language[1]" or ["downloads", "language", 1] -> "downloads.language.1" */
  function normalizePath(path) {
    if (Array.isArray(path)) return path.join(".");
    return String(path || "").replace(/\[(\d+)\]/g, ".$1").replace(/^\./, "");
  }

  function getPath(obj, path) {
    var parts = path.split(".");
    var cur = obj;
    for (var i = 0; i < parts.length; i++) {
      if (!isPlainObject(cur) || !Object.prototype.hasOwnProperty.call(cur, parts[i])) return { found: false, value: undefined };
      cur = cur[parts[i]];
    }
    return { found: true, value: cur };
  }

  function setPath(obj, path, value) {
    var parts = path.split(".");
    var cur = obj;
    for (var i = 0; i < parts.length - 1; i++) {
      if (!isPlainObject(cur[parts[i]])) cur[parts[i]] = {};
      cur = cur[parts[i]];
    }
    cur[parts[parts.length - 1]] = value;
  }

  /** Hidden and emptied, so an old "Saved" never reads as the answer to the next save. */
  function hideSavedNote() {
    var note = $("#config-saved");
    note.hidden = true;
    note.textContent = "";
  }

  function cssEscape(s) {
    return global.CSS && global.CSS.escape ? global.CSS.escape(s) : s.replace(/[^a-zA-Z0-9_-]/g, "\\$&");
  }

  views.config = {
    title: function () { return "Configuration"; },
    show: function () {
      hideSavedNote();
      // The option list first (once per page load): the fields are rendered from it.
      Config.loadSchema().then(function () { Config.load(); });
    },
  };

  function initConfig() {
    $("#config-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      Config.save(ev.submitter || $("#config-save"));
    });
    $("#config-reset").addEventListener("click", function () {
      Config.render();
      hideSavedNote();
    });
    $("#config-backups").addEventListener("click", function (ev) {
      var btn = ev.target.closest("button[data-restore]");
      if (btn) Config.restore(btn.dataset.restore, btn);
    });
    $("#notify-test-btn").addEventListener("click", function (ev) {
      var btn = ev.currentTarget;
      setBusy(btn, true);
      api("POST", "/api/notifications/apprise/test", {}).then(function (res) {
        var failed = (res.results || []).filter(function (r) { return !r.ok; });
        if (!failed.length) toast("Test notification sent to " + res.results.length + " target(s).", "success");
        else toast("Test notification failed for " + failed.map(function (r) { return r.url + " (" + (r.error || "error") + ")"; }).join(", "), "danger");
      }).catch(function (err) {
        showError(err, "Test notification");
      }).then(function () { setBusy(btn, false); });
    });
  }

  // ---------------------------------------------------------------- htmx glue

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

  // ---------------------------------------------------------------- readiness marker (tests, bench)

  function markReady(name) {
    document.documentElement.setAttribute("data-ready", name);
    if (global.performance && performance.mark) {
      try { performance.mark("aniworldd:ready:" + name); } catch (e) { /* ignore */ }
    }
  }

  // ---------------------------------------------------------------- boot

  function boot() {
    initAuthForms();
    initLibrary();
    initSeries();
    initSearch();
    initConfig();
    initHtmx();
    $("#scan-btn").addEventListener("click", Scan.start);
    Object.keys(App.extraInits).forEach(function (k) { App.extraInits[k](); });
    global.addEventListener("hashchange", route);

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

  var App = {
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
    fmt: { bytes: fmtBytes, speed: fmtSpeed, eta: fmtEta, date: fmtDate, episode: episodeLabel,
      site: siteLabel, language: function (c) { return LANGUAGE_LABELS[c] || c; } },
    languageBadge: languageBadge,
    views: views,
    bus: bus,
    auth: Auth,
    markReady: markReady,
    updateQueueBadge: updateQueueBadge,
    socket: function () { return socket; },
    extraInits: {},
  };
  global.App = App;

  // Deferred scripts run before DOMContentLoaded, so queue.js (loaded after this file) has registered
  // its view by the time boot() runs.
  if (document.readyState !== "complete") document.addEventListener("DOMContentLoaded", boot);
  else setTimeout(boot, 0);
})(window);
