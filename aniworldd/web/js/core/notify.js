/* User notices: toasts, screen-reader announcements, the confirm dialog, busy buttons. */
import { $, $all, h } from "./dom.js";

export function announce(message) {
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
  var phone = window.matchMedia && window.matchMedia("(max-width: 575.98px)").matches;
  return phone ? TOAST_MAX_PHONE : TOAST_MAX;
}

function updateToastSpace() {
  var container = $("#toasts");
  var height = container && container.querySelector(".toast") ? container.offsetHeight : 0;
  document.documentElement.style.setProperty("--toast-space", height + "px");
}

export function toast(message, kind, opts) {
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

export function showError(err, context) {
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
export function confirmDialog(title, body, okLabel, okClass) {
  var modalEl = $("#confirm-modal");
  if (!window.bootstrap || !window.bootstrap.Modal) return Promise.resolve(window.confirm(title + "\n" + body));
  $("#confirm-title").textContent = title;
  $("#confirm-body").textContent = body;
  var ok = $("#confirm-ok");
  ok.textContent = okLabel || "OK";
  ok.className = "btn " + (okClass || "btn-primary");
  var modal = window.bootstrap.Modal.getOrCreateInstance(modalEl);
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

export function setBusy(button, busy) {
  if (!button) return;
  button.disabled = !!busy;
  if (busy) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}
