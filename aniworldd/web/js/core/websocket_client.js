/*
 * A native WebSocket wrapper with a small Socket.IO-like API.
 *
 *   const socket = io();                       // ws(s)://<this host>/ws/connect?token=<JWT>
 *   socket.join("download_progress");
 *   socket.on("download_progress", (data, envelope) => ...);
 *
 * The server speaks plain JSON frames, no Socket.IO protocol: client -> server
 * {"action": "join"|"leave", "room"}, server -> client {"type", "timestamp", "data"}.
 * Browsers cannot set headers on a WebSocket, so the JWT goes in `?token=`; it is read again on every
 * (re)connect, so a fresh login is picked up without recreating the socket.
 * Reconnects with exponential backoff plus jitter and re-joins every room it was in.
 *
 * Lifecycle events (on the same `on`): "connect", "disconnect" ({code, reason}), "reconnect_attempt"
 * ({attempt, delay}), "connect_error" (no open within the timeout or closed before opening), "message"
 * (every envelope), "*" (same as message).
 */
function defaultToken() {
  try {
    return window.localStorage.getItem("aniworldd.token") || "";
  } catch (e) {
    return "";
  }
}

function defaultUrl(path) {
  var loc = window.location;
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + path;
}

function Socket(url, options) {
  options = options || {};
  this.path = options.path || "/ws/connect";
  this.url = url || defaultUrl(this.path);
  this.token = options.token || defaultToken; // string or function returning one
  this.minDelay = options.reconnectionDelay || 500;
  this.maxDelay = options.reconnectionDelayMax || 30000;
  this.openTimeout = options.timeout || 10000;
  this.reconnection = options.reconnection !== false;
  this.pingInterval = options.pingInterval || 25000;
  this._pingTimer = null;
  this._lastSeen = 0;
  this.rooms = new Set();
  this.handlers = Object.create(null);
  this.ws = null;
  this.connected = false;
  this.attempt = 0;
  this._timer = null;
  this._openTimer = null;
  this._closedByUser = false;
  if (options.autoConnect !== false) this.connect();
}

Socket.prototype._fullUrl = function () {
  var token = typeof this.token === "function" ? this.token() : this.token;
  if (!token) return this.url;
  return this.url + (this.url.indexOf("?") >= 0 ? "&" : "?") + "token=" + encodeURIComponent(token);
};

Socket.prototype.connect = function () {
  var self = this;
  this._closedByUser = false;
  clearTimeout(this._timer);
  if (this.ws && (this.ws.readyState === 0 || this.ws.readyState === 1)) return this;
  var ws;
  try {
    ws = new window.WebSocket(this._fullUrl());
  } catch (err) {
    this._emit("connect_error", { error: String(err) });
    this._scheduleReconnect();
    return this;
  }
  this.ws = ws;
  var opened = false;
  clearTimeout(this._openTimer);
  this._openTimer = setTimeout(function () {
    if (!opened && ws.readyState !== 1) {
      try { ws.close(); } catch (e) { /* ignore */ }
    }
  }, this.openTimeout);

  ws.onopen = function () {
    opened = true;
    clearTimeout(self._openTimer);
    self.connected = true;
    self.attempt = 0;
    self._startKeepAlive();
    self.rooms.forEach(function (room) {
      self._send({ action: "join", room: room });
    });
    self._emit("connect", {});
  };
  ws.onmessage = function (ev) {
    self._lastSeen = Date.now();
    var msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return; // not JSON: ignore rather than break the page
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "pong") return; // answer to our keep-alive
    self._emit(msg.type, msg.data || {}, msg);
    self._emit("message", msg, msg);
    self._emit("*", msg, msg);
  };
  ws.onclose = function (ev) {
    clearTimeout(self._openTimer);
    if (self.ws === ws) self._stopKeepAlive();
    if (self.ws !== ws) return; // superseded by a newer socket
    var was = self.connected;
    self.connected = false;
    self.ws = null;
    if (was) self._emit("disconnect", { code: ev.code, reason: ev.reason });
    else self._emit("connect_error", { code: ev.code, reason: ev.reason });
    if (!self._closedByUser) self._scheduleReconnect();
  };
  ws.onerror = function () {
    /* onclose follows and handles the reconnect */
  };
  return this;
};

/**
 * {"action": "ping"} every `pingInterval` ms: keeps NAT/reverse-proxy idle timers from cutting a quiet
 * connection, and a connection that no longer delivers anything (not even the pong) is closed and
 * re-opened instead of sitting there silently dead.
 */
Socket.prototype._startKeepAlive = function () {
  var self = this;
  this._stopKeepAlive();
  this._lastSeen = Date.now();
  this._pingTimer = setInterval(function () {
    if (!self.ws || self.ws.readyState !== 1) return;
    if (Date.now() - self._lastSeen > self.pingInterval * 2 + 5000) {
      try { self.ws.close(4000, "keep-alive timeout"); } catch (e) { /* ignore */ }
      return;
    }
    self._send({ action: "ping" });
  }, this.pingInterval);
};

Socket.prototype._stopKeepAlive = function () {
  clearInterval(this._pingTimer);
  this._pingTimer = null;
};

Socket.prototype._scheduleReconnect = function () {
  if (!this.reconnection || this._closedByUser) return;
  var self = this;
  this.attempt += 1;
  var base = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt - 1));
  var delay = Math.round(base / 2 + Math.random() * (base / 2)); // "equal jitter"
  this._emit("reconnect_attempt", { attempt: this.attempt, delay: delay });
  clearTimeout(this._timer);
  this._timer = setTimeout(function () {
    self.connect();
  }, delay);
};

Socket.prototype._send = function (obj) {
  if (this.ws && this.ws.readyState === 1) {
    this.ws.send(JSON.stringify(obj));
    return true;
  }
  return false;
};

Socket.prototype._emit = function (type, data, envelope) {
  var list = this.handlers[type];
  if (!list) return;
  list.slice().forEach(function (fn) {
    try {
      fn(data, envelope);
    } catch (err) {
      if (window.console) window.console.error("websocket handler for " + type + " failed", err);
    }
  });
};

/** Listen for a message type (e.g. "download_progress") or a lifecycle event. */
Socket.prototype.on = function (type, fn) {
  (this.handlers[type] = this.handlers[type] || []).push(fn);
  return this;
};

Socket.prototype.off = function (type, fn) {
  if (!fn) delete this.handlers[type];
  else if (this.handlers[type]) this.handlers[type] = this.handlers[type].filter(function (h) { return h !== fn; });
  return this;
};

/** Join a room; remembered and re-joined after every reconnect. */
Socket.prototype.join = function (room) {
  if (!this.rooms.has(room)) this.rooms.add(room);
  this._send({ action: "join", room: room });
  return this;
};

Socket.prototype.leave = function (room) {
  this.rooms.delete(room);
  this._send({ action: "leave", room: room });
  return this;
};

/** Send a raw client message ({action, ...}); false when not connected. */
Socket.prototype.emit = function (action, payload) {
  var msg = Object.assign({ action: action }, payload || {});
  return this._send(msg);
};

/** Close for good (logout): no reconnect until connect() is called again. */
Socket.prototype.disconnect = function () {
  this._closedByUser = true;
  this._stopKeepAlive();
  clearTimeout(this._timer);
  clearTimeout(this._openTimer);
  var ws = this.ws;
  this.ws = null;
  var was = this.connected;
  this.connected = false;
  if (ws) {
    try { ws.close(1000, "bye"); } catch (e) { /* ignore */ }
  }
  if (was) this._emit("disconnect", { code: 1000, reason: "client" });
  return this;
};

/** Drop the current connection and connect again now (e.g. with a new token). */
Socket.prototype.reconnect = function () {
  this._stopKeepAlive();
  var ws = this.ws;
  this.ws = null;
  this.connected = false;
  if (ws) {
    try { ws.close(1000, "reconnect"); } catch (e) { /* ignore */ }
  }
  this.attempt = 0;
  return this.connect();
};

export { Socket };

export function io(url, options) {
  if (url && typeof url === "object") {
    options = url;
    url = undefined;
  }
  return new Socket(url, options);
}
