/*
 * The REST API client and the login token it sends: the token lives in localStorage (with its expiry) and is
 * read on every call and socket (re)connect; api() is fetch() with JSON in/out and ApiError carrying the
 * server's error body. A 401 ends the session through the handler the login page registers.
 */

var TOKEN_KEY = "aniworldd.token";
var EXPIRES_KEY = "aniworldd.expires_at";

export var Auth = {
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

var endSession = function () {};

/** What ending the session does (pages/auth.js: forget the token, go to #/login and back afterwards). */
export function onSessionExpired(fn) {
  endSession = fn;
}

/** The token is no longer good (a 401, a rejected socket, an htmx 401). */
export function sessionExpired() {
  endSession();
}

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
export function api(method, path, body, opts) {
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
