/* Config page (#/config): a form rendered from the config schema, backups, notification test. */
import { api } from "../core/api.js";
import { $, $all, clear, cssEscape, h } from "../core/dom.js";
import { LANGUAGE_LABELS, fmtBytes, fmtDate } from "../core/format.js";
import { announce, confirmDialog, setBusy, showError, toast } from "../core/notify.js";
import { registerView } from "../core/router.js";

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

var view = {
  title: function () { return "Configuration"; },
  show: function () {
    hideSavedNote();
    // The option list first (once per page load): the fields are rendered from it.
    Config.loadSchema().then(function () { Config.load(); });
  },
};

export function init() {
  registerView("config", view);
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
