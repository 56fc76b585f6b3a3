"use strict";
// The inflow console: hash routes over the admin API.
//   #/  rules   #/rule/ID  one rule   #/new, #/edit/ID  the wizard   #/plugins  plugins
// Plain JS, no framework: the binary embeds this file as it is.

const REFRESH_MS = 2000;
const TOKEN_KEY = "inflow-admin-token";
const DASH = "—";
const $ = (selector, root = document) => root.querySelector(selector);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function num(n) {
  return typeof n === "number" ? n.toLocaleString("en") : DASH;
}

function when(t) {
  if (t == null || t === "") return DASH;
  const date = new Date(t);
  return isNaN(date) ? esc(t) : date.toLocaleString();
}

/** Sets `el`'s HTML only when it changed, so a live refresh keeps focus and half-done clicks. */
function setHtml(el, html) {
  if (el._html !== html) {
    el.innerHTML = html;
    el._html = html;
  }
}

// ---- The API: JSON, the token asked for once on a 401 and kept for the browser session.

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body ?? {};
  }
}

let tokenAsked = null; // one dialog for every call that met a 401 meanwhile
function askToken(refused) {
  tokenAsked ??= new Promise(resolve => {
    const dialog = $("#token");
    $("#token-problem").hidden = !refused;
    $("#token-input").value = "";
    dialog.addEventListener("close", () => {
      sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
      tokenAsked = null;
      resolve();
    }, { once: true });
    dialog.showModal();
  });
  return tokenAsked;
}

async function api(method, path, body) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {
      await askToken(Boolean(token));
      continue;
    }
    const text = await res.text();
    let data;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { error: text };
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
}

/** The loaded plugins, or null while this inflow has no `/api/v1/plugins`. */
async function plugins() {
  try {
    const data = await api("GET", "/api/v1/plugins");
    return Array.isArray(data) ? data : data?.plugins ?? [];
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

const rulePath = id => `/api/v1/rules/${encodeURIComponent(id)}`;

// ---- The notice line under the bar: what an action did, or why it failed and the fix.

let noticeSticky = false; // survives the next route change (e.g. "created", shown on the list)

function notice(kind, html, sticky = false) {
  const el = $("#notice");
  el.className = `notice ${kind}`;
  el.innerHTML = `<span>${html}</span><button type="button" class="link" data-dismiss>dismiss</button>`;
  el.hidden = false;
  el.dataset.kind = kind;
  noticeSticky = sticky;
}

function showError(e, kind = "error") {
  if (e instanceof TypeError) {
    notice(kind, "<strong>✖ inflow does not answer.</strong> Fix: check that inflow runs and that this is its admin address.");
  } else {
    const fix = e.body?.fix ? ` Fix: ${esc(e.body.fix)}` : "";
    notice(kind, `<strong>✖ ${esc(e.message)}</strong>${fix}`);
  }
}

function hideNotice(kind) {
  const el = $("#notice");
  if (!kind || el.dataset.kind === kind) el.hidden = true;
}

// ---- States, readable without colour: an icon and a word.

const STATES = {
  running: ["●", "running"],
  disabled: ["○", "disabled"],
  paused: ["‖", "paused"],
  waiting_for_plugin: ["⧗", "waiting for plugin"],
  failing: ["✖", "failing"],
  starting: ["…", "starting"],
  stopped: ["■", "stopped"],
};

function stateBadge(state) {
  const [icon, label] = STATES[state] ?? ["?", state];
  return `<span class="state s-${esc(state)}" data-state="${esc(state)}"><span aria-hidden="true">${icon}</span> ${esc(label)}</span>`;
}

/** The summed lag of a list entry or a status answer; null while inflow does not report it. */
function lagOf(x) {
  if (Array.isArray(x?.queues)) return x.queues.reduce((sum, q) => sum + (q.lag ?? 0), 0);
  return typeof x?.lag === "number" ? x.lag : null;
}

function errorCount(counters) {
  const errors = Object.entries(counters?.errors ?? {}).filter(([, n]) => n > 0);
  const total = errors.reduce((sum, [, n]) => sum + n, 0);
  const title = errors.map(([kind, n]) => `${kind}: ${n}`).join(", ");
  return counters ? `<span title="${esc(title)}">${num(total)}</span>` : DASH;
}

// Messages per second: the forwarded counter's change between two refreshes.
const seen = new Map(); // rule id -> { forwarded, at, rate }
function rateOf(id, counters) {
  const forwarded = counters?.forwarded;
  if (typeof forwarded !== "number") return DASH;
  const at = performance.now();
  let last = seen.get(id);
  // A refresh right after an action comes too soon to measure: it keeps the last rate.
  if (!last || at - last.at >= REFRESH_MS / 2) {
    const rate = last && forwarded >= last.forwarded ? ((forwarded - last.forwarded) * 1000) / (at - last.at) : null;
    last = { forwarded, at, rate };
    seen.set(id, last);
  }
  return last.rate == null ? DASH : last.rate.toFixed(last.rate < 10 ? 1 : 0);
}

function mappingText(mapping, versions) {
  if (!mapping || mapping.kind !== "plugin") return "built-in";
  const version = mapping.version ?? versions?.get(mapping.plugin);
  return `plugin ${esc(mapping.plugin)}` + (version ? ` <small class="mono">${esc(String(version).slice(0, 12))}</small>` : "");
}

function ruleActions(id, enabled) {
  const e = esc(id);
  const toggle = enabled
    ? `<button type="button" data-action="disable" data-id="${e}">Disable</button>`
    : `<button type="button" data-action="enable" data-id="${e}">Enable</button>`;
  return `<span class="row-actions"><a class="button" href="#/edit/${encodeURIComponent(id)}" data-action-link="edit">Edit</a>${toggle}<button type="button" class="danger" data-action="delete" data-id="${e}">Delete</button></span>`;
}

/** Brings `tbody` to `rows` ({key, cells}) touching only the cells that changed. */
function patchRows(tbody, labels, rows) {
  const old = new Map([...tbody.rows].map(tr => [tr.dataset.key, tr]));
  rows.forEach((row, i) => {
    let tr = old.get(row.key);
    old.delete(row.key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = row.key;
      labels.forEach(label => (tr.insertCell().dataset.label = label));
    }
    // One wrapper per cell: on a phone the cell is a grid of its label and this.
    row.cells.forEach((html, j) => setHtml(tr.cells[j], `<div>${html}</div>`));
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] ?? null);
  });
  old.forEach(tr => tr.remove());
}

function tableHtml(cls, labels) {
  return `<div class="table-wrap"><table class="${cls}"><thead><tr>${labels.map(l => `<th scope="col">${l}</th>`).join("")}</tr></thead><tbody></tbody></table></div>`;
}

// ---- The rule list.

const LIST_COLUMNS = ["State", "Rule", "Source", "Parent topic", "Mapping", "Msg/s", "Lag", "Errors", "Actions"];

function listView(view, alive) {
  view.innerHTML = `<h1>Rules</h1>${tableHtml("rules", LIST_COLUMNS)}<p class="empty" hidden>No rules yet. <a href="#/new">Create one</a>.</p>`;
  return async () => {
    const [data, loaded] = await Promise.all([api("GET", "/api/v1/rules"), plugins()]);
    if (!alive()) return;
    const versions = new Map((loaded ?? []).map(p => [p.name, p.version]));
    patchRows($("tbody", view), LIST_COLUMNS, data.rules.map(r => ({ key: r.id, cells: listCells(r, versions) })));
    $(".empty", view).hidden = data.rules.length > 0;
  };
}

function listCells(r, versions) {
  const origin = r.origin === "config_file" ? ` <span class="tag" title="defined in the config file: edit it there">config file</span>` : "";
  return [
    stateBadge(r.state) + (r.error ? `<div class="error-text">${esc(r.error)}</div>` : ""),
    `<a class="rule-id" href="#/rule/${encodeURIComponent(r.id)}">${esc(r.id)}</a>${origin}` + (r.description ? `<div class="muted">${esc(r.description)}</div>` : ""),
    `${esc(r.source?.topic)}<div class="muted">${esc(r.source?.expression)} · ${esc(r.source?.group)}</div>`,
    esc(r.parent_topic),
    mappingText(r.mapping, versions),
    `<span class="num" data-counter="rate">${rateOf(r.id, r.counters)}</span>`,
    `<span class="num">${num(lagOf(r))}</span>`,
    `<span class="num">${errorCount(r.counters)}</span>`,
    ruleActions(r.id, r.enabled),
  ];
}

// ---- One rule: its state, queues, counters and config.

const QUEUE_COLUMNS = ["Broker", "Queue", "Committed offset", "Max offset", "Lag", "In flight"];

function ruleView(view, alive, id) {
  view.innerHTML = `<p><a href="#/">← Rules</a></p>
    <div class="title-row"><h1><span class="mono">${esc(id)}</span></h1><span id="rule-actions"></span></div>
    <section class="card" id="rule-status"></section>
    <section class="card"><h2>Queues</h2><div id="rule-queues"></div></section>
    <section class="card"><h2>Counters</h2><dl class="counters" id="rule-counters"></dl></section>
    <section class="card"><h2>Config</h2><p id="rule-origin" class="muted"></p><pre id="rule-config"></pre></section>`;
  return async () => {
    const rule = await api("GET", rulePath(id));
    if (!alive()) return;
    const s = rule.status;
    setHtml($("#rule-actions"), ruleActions(id, s.enabled));
    setHtml($("#rule-status"), `<h2>State</h2><p>${stateBadge(s.state)}</p>
      <p><strong>Last error:</strong> <span id="rule-error">${s.error ? esc(s.error) : DASH}</span></p>
      <p><strong>Lag:</strong> ${num(lagOf(s))}</p>`);
    const queues = s.queues;
    if (!Array.isArray(queues)) {
      setHtml($("#rule-queues"), `<p class="muted">${DASH} this inflow does not report per-queue figures.</p>`);
    } else if (!queues.length) {
      setHtml($("#rule-queues"), `<p class="muted">No queue is assigned to this rule now.</p>`);
    } else {
      if (!$("tbody", $("#rule-queues"))) setHtml($("#rule-queues"), tableHtml("queues", QUEUE_COLUMNS));
      patchRows($("#rule-queues tbody"), QUEUE_COLUMNS, queues.map(q => ({
        key: `${q.broker}/${q.queue_id}`,
        cells: [esc(q.broker), num(q.queue_id), num(q.committed_offset), num(q.max_offset), num(q.lag), num(q.in_flight)].map((v, i) => (i ? `<span class="num">${v}</span>` : v)),
      })));
    }
    setHtml($("#rule-counters"), countersHtml(id, s.counters));
    const origin = rule.origin === "config_file" ? "the config file" : "the rules folder";
    setHtml($("#rule-origin"), `From ${origin}: <span class="mono">${esc(rule.file)}</span>`);
    setHtml($("#rule-config"), esc(JSON.stringify(rule.config, null, 2)));
  };
}

function countersHtml(id, c) {
  if (!c) return `<dt>Counters</dt><dd>${DASH} (not started)</dd>`;
  const rows = [
    ["Consumed", num(c.consumed)],
    ["Forwarded", `<span data-counter="forwarded">${num(c.forwarded)}</span>`],
    ["Messages per second", rateOf(id, c)],
    ["In flight", num(c.in_flight)],
    ["Skipped", num(c.skipped)],
    ["Dead-lettered", num(c.dead_lettered)],
    ["Publishes (QoS 0 / 1 / 2)", c.publishes ? `${num(c.publishes.qos0)} / ${num(c.publishes.qos1)} / ${num(c.publishes.qos2)}` : DASH],
    ["Errors", errorCount(c)],
    ...Object.entries(c.errors ?? {}).filter(([, n]) => n > 0).map(([kind, n]) => [`· ${esc(kind)}`, num(n)]),
    ["Last forward", when(c.last_forward_unix_ms)],
  ];
  return rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
}

// ---- Plugins.

const PLUGIN_COLUMNS = ["Plugin", "Version", "Loaded", "From", "Rules", "Last refusal"];

function pluginsView(view, alive) {
  view.innerHTML = `<h1>Plugins</h1><div id="plugins"></div>`;
  return async () => {
    const list = await plugins();
    if (!alive()) return;
    const box = $("#plugins");
    if (list === null) return setHtml(box, `<p class="muted">${DASH} this inflow does not list its plugins (it has no <code>/api/v1/plugins</code>).</p>`);
    if (!list.length) return setHtml(box, `<p class="muted">No plugin is loaded.</p>`);
    if (!$("tbody", box)) setHtml(box, tableHtml("plugins", PLUGIN_COLUMNS));
    patchRows($("tbody", box), PLUGIN_COLUMNS, list.map(p => ({
      key: p.name,
      cells: [
        `<span class="mono">${esc(p.name)}</span>`,
        p.version ? `<span class="mono" title="${esc(p.version)}">${esc(String(p.version).slice(0, 12))}</span>` : DASH,
        when(p.loaded_at),
        p.from_cache == null ? DASH : p.from_cache ? "cache" : "compiled",
        (p.rules ?? []).map(r => `<a href="#/rule/${encodeURIComponent(r)}">${esc(r)}</a>`).join(", ") || DASH,
        refusalText(p.last_refusal),
      ],
    })));
  };
}

function refusalText(refusal) {
  if (!refusal) return DASH;
  if (typeof refusal === "string") return `<span class="error-text">${esc(refusal)}</span>`;
  return `<span class="error-text">${esc(refusal.reason ?? JSON.stringify(refusal))}</span>` + (refusal.at ? `<div class="muted">${when(refusal.at)}</div>` : "");
}

// ---- The wizard: basic information → source → target, checked by the API's dry run.

const STEPS = ["Basic information", "Source", "Target"];
const LIMITS = [
  ["call_deadline_ms", "Call deadline (ms)"],
  ["memory_mb", "Memory (MiB)"],
  ["max_publishes", "Publishes per message"],
  ["max_payload_bytes", "Payload (bytes)"],
  ["max_unacked_per_queue", "Unacked per queue"],
];

const inputId = key => `f-${key.replace(/[._]/g, "-")}`;

function field(step, key, label, input, help = "") {
  return `<div class="field" data-field="${key}" data-step="${step}">
    <label for="${inputId(key)}">${label}</label>${input}
    ${help ? `<p class="help">${help}</p>` : ""}<div class="field-error" role="alert" hidden></div></div>`;
}

const text = (key, attrs = "") => `<input type="text" id="${inputId(key)}" ${attrs}>`;
const number = key => `<input type="number" min="1" step="1" id="${inputId(key)}" placeholder="default">`;
const select = (key, options) => `<select id="${inputId(key)}">${options.map(([v, l]) => `<option value="${esc(v)}">${esc(l)}</option>`).join("")}</select>`;

function pluginInput(loaded, current) {
  if (loaded === null) return text("plugin.name", `placeholder="empty: the built-in mapping"`);
  const names = [...new Set([...loaded.map(p => p.name), ...(current ? [current] : [])])];
  return select("plugin.name", [["", "Built-in mapping"], ...names.map(n => [n, `Plugin ${n}`])]);
}

async function wizardView(view, alive, editId) {
  const [existing, loaded] = await Promise.all([editId ? api("GET", rulePath(editId)) : null, plugins()]);
  if (!alive()) return null;
  const config = existing?.config;
  view.innerHTML = `<h1>${editId ? `Edit rule <span class="mono">${esc(editId)}</span>` : "New rule"}</h1>
    <ol class="steps">${STEPS.map((s, i) => `<li data-step="${i}"><span class="step-no">${i + 1}</span> ${s}</li>`).join("")}</ol>
    <form id="wizard" class="card" novalidate>
      <div class="general-errors problem" role="alert" hidden></div>
      <fieldset data-step="0"><legend>Basic information</legend>
        ${field(0, "id", "Rule id", text("id", editId ? "readonly" : `autocomplete="off"`), editId ? "A rule's id never changes." : "3 to 64 letters, digits, '-' or '_'. It never changes.")}
        ${field(0, "description", "Description", text("description"), "Optional.")}
        ${field(0, "enabled", "Enabled", `<label class="check"><input type="checkbox" id="f-enabled" checked> consume as soon as it is saved</label>`)}
      </fieldset>
      <fieldset data-step="1" hidden><legend>Source (RocketMQ)</legend>
        ${field(1, "source.topic", "Topic", text("source.topic"))}
        ${field(1, "source.expression", "Subscription expression", text("source.expression", `value="*"`), `"*" for every tag, or tags joined by ||.`)}
        ${field(1, "source.group", "Consumer group", text("source.group", `placeholder="inflow-<id>"`), "Optional: inflow-&lt;id&gt; by default.")}
        ${field(1, "source.start", "Start position", select("source.start", [["latest", "Latest (new messages only)"], ["earliest", "Earliest (from the first message kept)"]]), "For a group that has no committed offset yet.")}
      </fieldset>
      <fieldset data-step="2" hidden><legend>Target (MQTT)</legend>
        ${field(2, "target.parent_topic", "Parent topic", text("target.parent_topic"), "One MQTT topic level this rule owns, e.g. devices.")}
        ${field(2, "target.allow_topics", "Other allowed topics", text("target.allow_topics", `placeholder="e.g. alarms/+/high, audit/#"`), "Optional: MQTT topic filters beyond the parent topic, comma separated.")}
        ${field(2, "plugin.name", "Mapping", pluginInput(loaded, config?.plugin?.name), loaded === null ? "The name of a plugin in the plugin folder (this inflow does not list its plugins)." : "")}
        ${field(2, "plugin.config", "Plugin config", `<textarea id="f-plugin-config" rows="3"></textarea>`, "The string the plugin gets at start.")}
        ${field(2, "on_error", "On error", select("on_error", [["dead-letter", "dead-letter: send to the dead-letter topic"], ["skip", "skip: drop the message"], ["pause", "pause: stop the rule until fixed"]]))}
        ${field(2, "workers", "Workers", number("workers"), "Optional: one per core by default.")}
        <details><summary>Limits (optional)</summary><div class="grid">${LIMITS.map(([k, l]) => field(2, `limits.${k}`, l, number(`limits.${k}`))).join("")}</div></details>
      </fieldset>
      <div class="actions">
        <a class="button" href="${editId ? `#/rule/${encodeURIComponent(editId)}` : "#/"}">Cancel</a>
        <span class="spacer"></span>
        <button type="button" id="wizard-back">Back</button>
        <button type="submit" class="primary" id="wizard-next">Next</button>
      </div>
    </form>`;
  if (config) fillWizard(config);
  const form = $("#wizard");
  const pluginName = $(`#${inputId("plugin.name")}`);
  const showPluginConfig = () => ($('[data-field="plugin.config"]').hidden = !pluginName.value.trim());
  pluginName.addEventListener("input", showPluginConfig);
  showPluginConfig();
  let step = 0;
  const goTo = n => {
    step = n;
    form.querySelectorAll("fieldset").forEach(fs => (fs.hidden = Number(fs.dataset.step) !== n));
    view.querySelectorAll(".steps li").forEach(li => {
      const i = Number(li.dataset.step);
      li.classList.toggle("done", i < n);
      if (i === n) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    $("#wizard-back").hidden = n === 0;
    $("#wizard-next").textContent = n < STEPS.length - 1 ? "Next" : editId ? "Save changes" : "Create rule";
  };
  goTo(0);
  $("#wizard-back").addEventListener("click", () => goTo(step - 1));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const body = wizardBody();
    const last = step === STEPS.length - 1;
    const next = $("#wizard-next");
    next.disabled = true;
    try {
      if (last) {
        const answer = await api("PUT", rulePath(body.id), body);
        notice("info", `✔ Rule <strong>${esc(body.id)}</strong> ${answer.created ? "created" : "saved"}.`, true);
        location.hash = "#/";
      } else {
        await api("POST", "/api/v1/rules/validate", body);
        showMistakes([], step);
        goTo(step + 1);
      }
    } catch (e) {
      if (e.status !== 400 || !Array.isArray(e.body.errors)) return showError(e);
      // Mistakes of later steps wait until their step is filled in; the last step shows all.
      const first = showMistakes(e.body.errors, last ? STEPS.length - 1 : step);
      if (first === null) goTo(step + 1);
      else goTo(first);
    } finally {
      next.disabled = false;
    }
  });
  return null;
}

function fillWizard(c) {
  const set = (key, value) => ($(`#${inputId(key)}`).value = value ?? "");
  set("id", c.id);
  set("description", c.description);
  $("#f-enabled").checked = c.enabled !== false;
  set("source.topic", c.source?.topic);
  set("source.expression", c.source?.expression);
  set("source.group", c.source?.group);
  set("source.start", c.source?.start);
  set("target.parent_topic", c.target?.parent_topic);
  set("target.allow_topics", (c.target?.allow_topics ?? []).join(", "));
  set("plugin.name", c.plugin?.name);
  set("plugin.config", c.plugin?.config);
  set("on_error", c.on_error);
  set("workers", c.workers);
  LIMITS.forEach(([k]) => set(`limits.${k}`, c.limits?.[k]));
}

function wizardBody() {
  const value = key => $(`#${inputId(key)}`).value.trim();
  const body = {
    id: value("id"),
    enabled: $("#f-enabled").checked,
    source: { topic: value("source.topic"), expression: value("source.expression") || "*", start: value("source.start") },
    target: { parent_topic: value("target.parent_topic"), allow_topics: value("target.allow_topics").split(",").map(s => s.trim()).filter(Boolean) },
    plugin: null,
    on_error: value("on_error"),
  };
  if (value("description")) body.description = value("description");
  if (value("source.group")) body.source.group = value("source.group");
  if (value("plugin.name")) body.plugin = { name: value("plugin.name"), ...(value("plugin.config") ? { config: $("#f-plugin-config").value } : {}) };
  if (value("workers")) body.workers = Number(value("workers"));
  const limits = Object.fromEntries(LIMITS.filter(([k]) => value(`limits.${k}`)).map(([k]) => [k, Number(value(`limits.${k}`))]));
  if (Object.keys(limits).length) body.limits = limits;
  return body;
}

/** The form field a mistake's place names by its last word (`rule "x" target.parent_topic`). */
function fieldOf(place) {
  const key = String(place).split(" ").pop().replace(/\[\d+\]$/, "");
  return $(`#wizard [data-field="${CSS.escape(key)}"]`);
}

/**
 * Shows each mistake of steps up to `upTo` beside its field with its fix, the rest (no field)
 * above the form; returns the first step with a shown mistake, or null when there is none.
 */
function showMistakes(errors, upTo) {
  const form = $("#wizard");
  form.querySelectorAll(".field").forEach(f => {
    f.classList.remove("invalid");
    $(".field-error", f).hidden = true;
    $(".field-error", f).innerHTML = "";
    f.querySelector("input, select, textarea")?.removeAttribute("aria-invalid");
  });
  const general = [];
  let first = null;
  for (const e of errors) {
    const f = fieldOf(e.place);
    const step = f ? Number(f.dataset.step) : STEPS.length - 1;
    if (step > upTo) continue;
    first = first === null ? step : Math.min(first, step);
    const html = `<p><strong>✖ ${esc(e.problem)}</strong><br>Fix: ${esc(e.fix)}</p>`;
    if (!f) {
      general.push(`<p><strong>✖ ${esc(e.place)}: ${esc(e.problem)}</strong><br>Fix: ${esc(e.fix)}</p>`);
      continue;
    }
    f.classList.add("invalid");
    f.closest("details")?.setAttribute("open", "");
    const box = $(".field-error", f);
    box.insertAdjacentHTML("beforeend", html);
    box.hidden = false;
    f.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
  }
  const box = $(".general-errors", form);
  box.innerHTML = general.join("");
  box.hidden = !general.length;
  return first;
}

// ---- Actions from the list and the rule page.

function confirmDialog(textHtml, okLabel) {
  return new Promise(resolve => {
    const dialog = $("#confirm");
    $("#confirm-text").innerHTML = textHtml;
    $("#confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

const ACTIONS = {
  enable: { confirm: null, done: "enabled" },
  disable: { confirm: "It drains, commits its offsets and holds them until enabled again.", done: "disabled" },
  delete: { confirm: "It drains, commits and stops; its file in the rules folder is removed.", done: "deleted" },
};

async function act(action, id) {
  const what = ACTIONS[action];
  const name = `<strong class="mono">${esc(id)}</strong>`;
  if (what.confirm && !(await confirmDialog(`${action[0].toUpperCase()}${action.slice(1)} rule ${name}? ${what.confirm}`, action[0].toUpperCase() + action.slice(1)))) return;
  try {
    if (action === "delete") await api("DELETE", rulePath(id));
    else await api("POST", `${rulePath(id)}/${action}`);
    const leave = action === "delete" && location.hash !== "#/";
    notice("info", `✔ Rule ${name} ${what.done}.`, leave);
    if (leave) location.hash = "#/";
    else refreshNow();
  } catch (e) {
    showError(e);
  }
}

document.addEventListener("click", ev => {
  const button = ev.target.closest("button[data-action]");
  if (button) act(button.dataset.action, button.dataset.id);
  if (ev.target.closest("[data-dismiss]")) hideNotice();
});

// ---- The router: each view sets itself up and may return a refresh, run every REFRESH_MS.

const ROUTES = [
  [/^#?\/?$/, listView, "rules"],
  [/^#\/rule\/(.+)$/, ruleView, "rules"],
  [/^#\/new$/, wizardView, "rules"],
  [/^#\/edit\/(.+)$/, wizardView, "rules"],
  [/^#\/plugins$/, pluginsView, "plugins"],
];

let generation = 0;
let timer = null;
let refreshNow = () => {};

async function route() {
  const gen = ++generation;
  const alive = () => gen === generation;
  clearInterval(timer);
  if (noticeSticky) noticeSticky = false;
  else hideNotice();
  const [pattern, make, nav] = ROUTES.find(([re]) => re.test(location.hash)) ?? ROUTES[0];
  const args = (location.hash.match(pattern) ?? []).slice(1).map(decodeURIComponent);
  document.querySelectorAll("[data-nav]").forEach(a => a.classList.toggle("current", a.dataset.nav === nav));
  const view = $("#view");
  let refresh;
  try {
    refresh = await make(view, alive, ...args);
  } catch (e) {
    if (alive()) showError(e);
    return;
  }
  if (!refresh || !alive()) return;
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await refresh();
      hideNotice("refresh");
    } catch (e) {
      if (alive()) showError(e, "refresh");
    } finally {
      busy = false;
    }
  };
  refreshNow = tick;
  timer = setInterval(tick, REFRESH_MS);
  await tick();
}

window.addEventListener("hashchange", route);
route();
