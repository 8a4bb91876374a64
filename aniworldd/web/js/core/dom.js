/* DOM helpers every page uses: query, build elements from data (textContent only), debounce, ready marker. */

export function $(sel, root) {
  return (root || document).querySelector(sel);
}

export function $all(sel, root) {
  return Array.prototype.slice.call((root || document).querySelectorAll(sel));
}

/** h("a", {href: "#", class: "x", dataset: {k: 1}, onclick: fn}, "text", childNode, [more]) */
export function h(tag, attrs) {
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

export function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
  else if (child instanceof Node) el.appendChild(child);
  else el.appendChild(document.createTextNode(String(child)));
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function debounce(fn, ms) {
  var t = null;
  return function () {
    var args = arguments;
    var self = this;
    clearTimeout(t);
    t = setTimeout(function () { fn.apply(self, args); }, ms);
  };
}

export function isTextEntry(el) {
  if (!el) return false;
  if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
  return el.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset|range|color|file)$/i.test(el.type);
}

/** An id or value for a CSS selector, e.g. $("#" + cssEscape(id)). */
export function cssEscape(s) {
  return window.CSS && window.CSS.escape ? window.CSS.escape(s) : s.replace(/[^a-zA-Z0-9_-]/g, "\\$&");
}

export function markReady(name) {
  document.documentElement.setAttribute("data-ready", name);
  if (window.performance && performance.mark) {
    try { performance.mark("aniworldd:ready:" + name); } catch (e) { /* ignore */ }
  }
}
