/* Setup (first master password), login and logout (#/setup, #/login), and what ends a session. */
import { Auth, api, onSessionExpired } from "../core/api.js";
import { $ } from "../core/dom.js";
import { setBusy, toast } from "../core/notify.js";
import { RETURN_KEY, authState, registerView, route } from "../core/router.js";
import { currentSocket, refreshQueueBadge, startSocket } from "../core/socket.js";

var setupView = {
  title: function () { return "Setup"; },
  focus: function () { return $("#setup-password"); },
  show: function () {},
};

var loginView = {
  title: function () { return "Log in"; },
  focus: function () { return $("#login-password"); },
  show: function () {
    $("#login-error").hidden = true;
  },
};

/** The session ended (see core/api.js sessionExpired): log out here, remember where the user was. */
function endSession() {
  var wasLoggedIn = !!Auth.token() || !document.body.classList.contains("logged-out");
  Auth.clear();
  if (currentSocket()) currentSocket().disconnect();
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
  if (currentSocket()) currentSocket().reconnect();
  else startSocket();
  var back = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  location.hash = back && back !== "#/login" && back !== "#/setup" ? back : "#/library";
  refreshQueueBadge();
}

export function init() {
  onSessionExpired(endSession);
  registerView("setup", setupView);
  registerView("login", loginView);
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
      if (currentSocket()) currentSocket().disconnect();
      document.body.classList.add("logged-out");
      sessionStorage.removeItem(RETURN_KEY);
      location.hash = "#/login";
      toast("Logged out.", "secondary");
    };
    api("POST", "/api/auth/logout", undefined, { noAuthRedirect: true }).then(done, done);
  });
}
