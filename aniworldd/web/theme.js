/* Light/dark: Bootstrap 5.3 reads data-bs-theme; follow the system preference, live. Loaded
   synchronously in <head> (tiny) so the first paint already has the right colours. */
(function () {
  "use strict";
  var query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function apply() {
    document.documentElement.setAttribute("data-bs-theme", query && query.matches ? "dark" : "light");
  }
  apply();
  if (query && query.addEventListener) query.addEventListener("change", apply);
})();
