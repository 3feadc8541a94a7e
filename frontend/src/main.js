// relay studio: edit a preset, and on every edit see what relay decides and sends.
//
// The page holds no logic of relay's: it sends the editor's text to the server,
// which compiles and renders it with the library, and shows what comes back.

import { goToLine, jsonEditor, presetEditor, replaceDoc, showErrors } from "./editor.js";
import { clear, diffBlock, el, inline, jsonBlock, pill, table } from "./view.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "relay-studio-token";
const PASTE_EXAMPLE = `{
  "type": "identify",
  "userId": "u-1",
  "traits": {"email": "ann@example.com", "name": "Ann"}
}`;

// The token arrives in the URL `relay studio` opened; keep it for reloads, drop it from the address bar.
const params = new URLSearchParams(location.search);
const token = params.get("token") || sessionStorage.getItem(TOKEN_KEY) || "";
if (params.get("token")) {
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, "", location.pathname + location.hash);
}

const state = {
  preset: null,
  file: "",
  digest: "",
  savedText: "",
  readOnly: "",
  events: [],
  settings: [],
  eventId: "",
  settingsId: "case",
  pasted: PASTE_EXAMPLE,
  schema: null,
  seq: 0,
  timer: null,
  review: null,
  golden: null,
  loading: false,
};

async function api(path, body) {
  const headers = { "X-Relay-Token": token };
  if (body) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method: body ? "POST" : "GET", headers, body: body ? JSON.stringify(body) : undefined });
  } catch (error) {
    return { ok: false, status: 0, data: { message: `studio is not answering (${error.message}); is \`relay studio\` still running?` } };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { message: `HTTP ${response.status}` };
  }
  return { ok: response.ok, status: response.status, data };
}

const editor = presetEditor($("editor"), { onChange: edited, getSchema: () => state.schema });
let pasteEditor = null;

function lineLink(line, label) {
  if (!line) return null;
  return el("a", { class: "line", href: "#", title: "Go to this line", onclick: (e) => (e.preventDefault(), goToLine(editor, line)) }, label || `line ${line}`);
}

function banner(text, kind, action) {
  $("banner").hidden = false;
  $("banner").dataset.kind = kind;
  $("banner-text").textContent = text;
  const yes = $("banner-yes");
  yes.hidden = !action;
  if (action) {
    yes.textContent = action.label;
    yes.onclick = () => {
      $("banner").hidden = true;
      action.run();
    };
  }
}
$("banner-no").onclick = () => ($("banner").hidden = true);

function edited(text) {
  $("dirty").hidden = text === state.savedText;
  if (!state.loading) schedulePreview();
}

function schedulePreview(delay = 250) {
  clearTimeout(state.timer);
  $("status").dataset.state = "busy";
  state.timer = setTimeout(preview, delay);
}

function eventSource() {
  return state.eventId === "paste" ? { json: state.pasted } : { id: state.eventId };
}

async function preview() {
  if (!state.preset) return;
  const seq = ++state.seq;
  const text = editor.state.doc.toString();
  const answer = await api("/api/preview", { preset: state.preset, text, event: eventSource(), settings: state.settingsId });
  if (seq !== state.seq) return; // a newer edit is on its way
  if (!answer.ok) {
    $("status").dataset.state = "bad";
    $("status").textContent = answer.data.message || "error";
    return;
  }
  render(answer.data);
}

// -- rendering ------------------------------------------------------------------

function render(data) {
  const errors = data.errors || [];
  showErrors(editor, errors);
  $("status").dataset.state = errors.length ? "bad" : "good";
  $("status").textContent = errors.length ? `${errors.length} error${errors.length === 1 ? "" : "s"}` : "✓ valid";
  $("problems").hidden = !errors.length;
  $("problems-count").textContent = `${errors.length} problem${errors.length === 1 ? "" : "s"}`;
  clear(
    $("problems-list"),
    errors.map((error) =>
      el(
        "li",
        { onclick: () => goToLine(editor, error.line), title: "Go to this line" },
        el("span", { class: "where", text: `${error.line}:${error.col}` }),
        el("span", { class: "text", text: error.text }),
      ),
    ),
  );
  document.body.classList.toggle("stale", Boolean(errors.length));
  if (errors.length) {
    renderSummary(null, "The preset has errors: fix them to re-render (below is the last good render).");
    return;
  }
  renderSettings(data.settings || []);
  if (data.input_error) {
    renderSummary(null, data.input_error);
    return;
  }
  state.review = data.review;
  state.golden = data.golden;
  renderSummary(data.review);
  renderRequests(data.review);
  renderTrace(data.review);
  renderFields(data.review);
  renderGolden(data.golden);
}

function renderSettings(rows) {
  clear(
    $("settings-view"),
    rows.map((row) =>
      el(
        "span",
        { class: `setting${row.secret ? " secret" : ""}`, title: row.source },
        el("b", { text: row.name }),
        " = ",
        row.secret && row.value !== null ? el("span", { class: "masked", text: "•••••• secret" }) : row.value === null ? el("span", { class: "muted", text: "unset" }) : inline(row.value),
      ),
    ),
  );
}

function renderSummary(review, problem) {
  const box = $("summary");
  if (problem) {
    clear(box, el("div", { class: "summary-problem" }, pill("not rendered", "bad"), " ", el("span", { text: problem })));
    return;
  }
  const decision = review.decision;
  if (!decision) {
    const error = review.error;
    clear(box, el("div", { class: "summary-problem" }, pill("render error", "bad"), " ", el("span", { text: error.message }), " ", lineLink(error.line)));
    return;
  }
  const parts = [];
  if (decision.action === "send") {
    parts.push(pill("SEND", "good"));
    parts.push(el("span", { class: "fact" }, "rule ", el("b", { text: decision.rule || "(none: defaults)" })));
  } else {
    parts.push(pill("DROP", "drop"));
    parts.push(el("span", { class: "fact reason", text: decision.reason }));
    parts.push(el("span", { class: "fact" }, "rule ", el("b", { text: decision.rule })));
  }
  if (decision.mapping) parts.push(el("span", { class: "fact" }, "mapping ", el("b", { text: decision.mapping }), " ", lineLink(decision.mapping_line)));
  if (decision.variant && decision.variant !== "default") parts.push(el("span", { class: "fact" }, "variant ", el("b", { text: decision.variant })));
  if (decision.order_key) parts.push(el("span", { class: "fact" }, "order key ", el("code", { text: decision.order_key })));
  const children = [el("div", { class: "summary-line" }, parts)];
  if (review.error) {
    children.push(el("div", { class: "summary-problem" }, pill("render error", "bad"), " ", el("span", { text: review.error.message }), " ", lineLink(review.error.line)));
  }
  clear(box, children);
}

function copyButton(text, label) {
  const button = el("button", { class: "small", text: label });
  button.onclick = async () => {
    const details = button.closest(".req")?.querySelector("details.curl");
    if (details) details.open = true;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied ✓";
    } catch {
      button.textContent = "Select it below";
    }
    setTimeout(() => (button.textContent = label), 1600);
  };
  return button;
}

function renderRequests(review) {
  const panel = $("tab-request");
  if (!review.decision || review.decision.action !== "send") {
    const text = review.decision ? `Dropped: nothing is sent. ${review.decision.reason}` : "Nothing rendered.";
    clear(panel, el("p", { class: "empty", text }));
    return;
  }
  const batched = review.batched
    ? [
        el("h3", { class: "batched-head", text: "Batched: how a run sends it (batching on)" }),
        el("p", { class: "muted", text: "With batching on, the event's item rides in the bulk request below, with other events' items; steps that do not batch still go one by one. The requests above are what it sends with batching off (relay: {batch: false})." }),
        ...review.batched.map((request) => requestView(request, "batched")),
      ]
    : null;
  clear(panel, review.requests.map((request) => requestView(request, "single")), batched);
}

function requestView(request, kind) {
  const decoded = request.body === null ? el("p", { class: "muted", text: "(no body)" }) : request.encoding === "form" ? table(["field", "value"], Object.entries(request.body).map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", {}, inline(v))))) : jsonBlock(request.body, "body-decoded");
  const raw = el("pre", { class: "code raw", hidden: true, text: request.raw || "(empty)" });
  const decodedBox = el("div", { class: "decoded" }, decoded);
  const toggle = (showRaw) => () => {
    raw.hidden = !showRaw;
    decodedBox.hidden = showRaw;
    tabs.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.view === "raw") === showRaw)));
  };
  const tabs = el(
    "span",
    { class: "seg" },
    el("button", { class: "small", dataset: { view: "decoded" }, "aria-pressed": "true", onclick: toggle(false), text: "Decoded" }),
    el("button", { class: "small", dataset: { view: "raw" }, "aria-pressed": "false", onclick: toggle(true), text: "Raw" }),
  );
  return el(
    "div",
    { class: `req req-${kind}`, dataset: { step: request.step } },
    el("div", { class: "req-head" }, el("b", { text: request.title }), request.note ? el("span", { class: "note", text: request.note }) : null),
    el("div", { class: "req-line" }, el("span", { class: `method m-${request.method}`, text: request.method }), el("code", { class: "url", text: request.url })),
    table(["header", "value"], Object.entries(request.headers).map(([k, v]) => el("tr", {}, el("td", { class: "hname", text: k }), el("td", {}, el("code", { text: v })))), "headers"),
    el("div", { class: "body-head" }, el("span", { text: `Body · ${request.encoding} · ${request.bytes} bytes` }), tabs, el("span", { class: "spacer" }), copyButton(request.curl, "Copy as curl")),
    decodedBox,
    raw,
    el("details", { class: "curl" }, el("summary", { text: "curl (secrets as environment variables)" }), el("pre", { class: "code curl-text", text: request.curl })),
  );
}

function renderTrace(review) {
  const panel = $("tab-trace");
  const trace = review.trace;
  if (!trace) return clear(panel, el("p", { class: "empty", text: "No trace: the event could not be decided." }));
  const selectors = trace.selectors.map((row) =>
    el(
      "tr",
      { class: row.matched ? "hit" : "miss" },
      el("td", {}, el("b", { text: row.name }), " ", lineLink(row.line, `:${row.line}`)),
      el("td", {}, row.paths.map((path) => el("code", { class: `path${path === row.matched ? " matched" : ""}`, text: path })), row.transform ? el("span", { class: "muted", text: ` | ${row.transform}` }) : null),
      el("td", {}, row.matched || row.default ? inline(row.value) : el("span", { class: "muted", text: "no match" })),
    ),
  );
  const rules = trace.rules.map((row, index) =>
    el(
      "tr",
      { class: `rule-${row.status.replace(" ", "-")}` },
      el("td", { class: "num", text: String(index + 1) }),
      el("td", {}, el("b", { text: row.name }), " ", lineLink(row.line, `:${row.line}`)),
      el("td", {}, row.when ? el("code", { text: row.when }) : el("span", { class: "muted", text: "always" })),
      el("td", { class: "muted", text: row.action }),
      el("td", {}, pill(row.status === "fired" ? row.effect : row.status, row.status === "fired" ? (row.effect === "drop" ? "drop" : "good") : "quiet")),
    ),
  );
  const decision = review.decision;
  clear(
    panel,
    el("h3", { text: "Mapping" }),
    el("p", {}, decision.mapping ? [el("b", { text: decision.mapping }), " ", lineLink(decision.mapping_line)] : el("span", { class: "muted", text: "none matched: unmapped" }), decision.variant ? [" · request ", el("b", { text: decision.variant })] : null),
    el("h3", { text: "Selectors" }),
    table(["selector", "paths (the one that matched is marked)", "value"], selectors, "selectors"),
    el("h3", { text: "Rules, in order" }),
    table(["#", "rule", "when", "does", "here"], rules, "rules"),
  );
}

function renderFields(review) {
  const panel = $("tab-fields");
  if (!review.fields || !review.fields.length) {
    clear(panel, el("p", { class: "empty", text: review.decision && review.decision.action === "drop" ? "Dropped: no fields are rendered." : "No fields." }));
    return;
  }
  const fields = review.fields.map((row) =>
    el(
      "tr",
      {},
      el("td", {}, el("code", { text: row.field })),
      el("td", {}, row.present ? inline(row.value) : el("span", { class: "muted", text: "null: left out" })),
      el("td", {}, el("span", { class: row.origin.startsWith("mapping") ? "origin mapping" : "origin shared", text: row.origin }), row.overrides ? el("span", { class: "muted", text: " (over shared)" }) : null),
      el("td", {}, el("code", { class: "tpl", text: row.template })),
      el("td", {}, lineLink(row.line, `:${row.line}`)),
    ),
  );
  const body = (review.body_sources || []).map((row) =>
    el(
      "tr",
      {},
      el("td", {}, el("code", { text: row.field })),
      el("td", {}, row.present ? inline(row.value) : el("span", { class: "muted", text: "null: left out" })),
      el("td", {}, el("code", { class: "tpl", text: row.template })),
      el("td", {}, lineLink(row.line, `:${row.line}`)),
    ),
  );
  clear(
    panel,
    el("h3", { text: "Fields: the mapping or shared `fields` each comes from" }),
    table(["field", "value", "from", "template", ""], fields, "fields"),
    body.length ? [el("h3", { text: "Request body: the template of each key" }), table(["body key", "value", "template", ""], body, "fields")] : null,
  );
}

function renderGolden(golden) {
  const panel = $("tab-golden");
  const badge = $("golden-badge");
  badge.hidden = !golden;
  if (!golden) {
    clear(panel, el("p", { class: "empty", text: "Pick a golden case under Event to compare the render with its expectation." }));
    return;
  }
  badge.textContent = golden.ok ? "✓" : "✗";
  badge.dataset.ok = String(golden.ok);
  const status = golden.ok ? pill("matches its expectation", "good") : golden.has_expectation ? pill("differs from its expectation", "bad") : pill("no expectation yet", "drop");
  const accept = el("button", { id: "accept", class: "primary", text: "Accept as golden", disabled: golden.ok || Boolean(state.readOnly), title: state.readOnly || "Write the current render as this case's `expected:` (comments kept)" });
  accept.onclick = () => acceptGolden(golden.case);
  clear(
    panel,
    el("div", { class: "golden-head" }, el("b", { text: golden.case }), el("code", { class: "file", text: golden.file }), status, el("span", { class: "spacer" }), accept),
    golden.description ? el("p", { class: "muted", text: golden.description }) : null,
    el("div", { id: "accept-note" }),
    golden.ok ? el("p", { class: "empty", text: "The render is exactly what the case expects." }) : diffBlock(golden.diff),
  );
}

async function acceptGolden(caseName) {
  const text = editor.state.doc.toString();
  const answer = await api("/api/accept", { preset: state.preset, text, case: caseName });
  if (!answer.ok) return banner(answer.data.message, "bad");
  const note = `Wrote ${answer.data.file} (only expected: changed; comments kept).` + (answer.data.unsaved_preset ? " The preset itself has unsaved changes: save it too, or the golden will fail against the file on disk." : "");
  await preview();
  clear($("accept-note"), el("p", { class: answer.data.unsaved_preset ? "warn" : "ok", text: note }));
}

// -- send to fake -----------------------------------------------------------------

async function sendToFake() {
  const box = $("send-result");
  clear(box, el("p", { class: "muted", text: "Sending…" }));
  $("send").disabled = true;
  const answer = await api("/api/send", { preset: state.preset, text: editor.state.doc.toString(), event: eventSource(), settings: state.settingsId, fault: $("fault").value });
  $("send").disabled = false;
  if (!answer.ok) return clear(box, el("p", { class: "summary-problem" }, pill("not sent", "bad"), " ", answer.data.message || ""));
  const result = answer.data;
  const kind = { delivered: "good", "dead letter": "bad", dropped: "drop" }[result.outcome] || "bad";
  const facts = [pill(result.outcome.toUpperCase(), kind)];
  if (result.http_status !== null) facts.push(el("span", { class: "fact" }, "last status ", el("b", { text: String(result.http_status) })));
  facts.push(el("span", { class: "fact", text: `${result.attempts} attempt${result.attempts === 1 ? "" : "s"}` }));
  if (result.retries) facts.push(el("span", { class: "fact", text: `${result.retries} retr${result.retries === 1 ? "y" : "ies"}, waits ${result.waits.map((w) => w.toFixed(2) + " s").join(", ")}` }));
  const exchanges = result.exchanges.map((x, index) =>
    el(
      "li",
      { class: `exchange s${String(x.status)[0]}` },
      el("div", { class: "ex-line" }, el("span", { class: "step", text: String(index + 1) }), el("span", { class: "muted", text: x.step }), el("span", { class: `method m-${x.method}`, text: x.method }), el("code", { class: "url", text: x.url }), el("span", { text: "→" }), el("b", { class: "status", text: String(x.status) }), x.wait !== null ? pill(`retry in ${x.wait.toFixed(2)} s`, "drop") : null),
      typeof x.body === "string" ? el("pre", { class: "code raw", text: x.body || "(empty)" }) : jsonBlock(x.body),
    ),
  );
  const fake = result.fake;
  const preflight = fake.preflight.flatMap((check) => [...check.fixed.map((f) => `fixed: ${f}`), ...check.problems]);
  const stateRows = fake.state.rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, typeof cell === "string" ? cell : inline(cell)))));
  clear(
    box,
    el("div", { class: "outcome summary-line" }, facts),
    result.reason && result.outcome !== "delivered" ? el("p", { class: "reason", text: result.reason }) : null,
    result.hint ? el("div", { class: "hint" }, el("b", { text: "hint " }), result.hint) : null,
    result.note && result.retries ? el("p", { class: "muted", text: result.note }) : null,
    el("h3", { text: "Attempts" }),
    el("ol", { class: "exchanges" }, exchanges),
    el("h3", { text: `The fake (${fake.kind}) at ${fake.url}` }),
    preflight.length ? el("p", { class: "muted", text: `preflight on start: ${preflight.join("; ")}` }) : null,
    stateRows.length ? table(fake.state.columns, stateRows, "state") : el("p", { class: "muted", text: "The fake holds nothing yet." }),
  );
}

// -- choosing -------------------------------------------------------------------------

function fillEvents() {
  const select = $("event");
  const groups = new Map();
  for (const choice of state.events) {
    if (!groups.has(choice.group)) groups.set(choice.group, el("optgroup", { label: choice.group }));
    groups.get(choice.group).append(el("option", { value: choice.id, text: choice.label }));
  }
  clear(select, [...groups.values()], el("optgroup", { label: "Your own" }, el("option", { value: "paste", text: "Paste JSON…" })));
  select.value = state.eventId;
}

function fillSettings() {
  const golden = state.eventId.startsWith("golden:");
  const options = state.settings.map((choice) => el("option", { value: choice.id, text: choice.label }));
  if (golden) options.unshift(el("option", { value: "case", text: "the golden case's own settings" }));
  if (!options.length) options.push(el("option", { value: "", text: "(no settings file found)" }));
  clear($("settings"), options);
  if (golden && !state.settingsTouched) state.settingsId = "case";
  if (!golden && (state.settingsId === "case" || !state.settingsId)) state.settingsId = state.settings.length ? state.settings[0].id : "";
  $("settings").value = state.settingsId;
}

function chooseEvent(id) {
  state.eventId = id;
  $("paste").hidden = id !== "paste";
  if (id === "paste" && !pasteEditor) {
    pasteEditor = jsonEditor($("paste-editor"), { doc: state.pasted, onChange: (text) => ((state.pasted = text), schedulePreview()) });
  }
  fillSettings();
  schedulePreview(0);
}

async function openPreset(name) {
  if (state.preset && editor.state.doc.toString() !== state.savedText && !confirm("Discard the unsaved changes to this preset?")) {
    $("preset").value = state.preset;
    return;
  }
  const answer = await api(`/api/presets/${encodeURIComponent(name)}`);
  if (!answer.ok) return banner(answer.data.message, "bad");
  const data = answer.data;
  Object.assign(state, { preset: data.name, file: data.file, digest: data.digest, savedText: data.text, readOnly: data.read_only, events: data.events, settings: data.settings, settingsTouched: false });
  $("preset").value = data.name;
  $("file").textContent = data.file;
  $("readonly").hidden = !data.read_only;
  $("readonly").textContent = data.read_only ? "read-only" : "";
  $("readonly").title = data.read_only;
  $("save").disabled = Boolean(data.read_only);
  $("save").title = data.read_only || "Save (Ctrl-S)";
  history.replaceState(null, "", `#${data.name}`);
  state.loading = true;
  replaceDoc(editor, data.text);
  state.loading = false;
  $("dirty").hidden = true;
  const example = data.events.find((e) => e.group === "Examples" && e.label.startsWith(data.name));
  state.eventId = (data.events.find((e) => e.group === "Golden cases") || example || data.events[0] || { id: "paste" }).id;
  state.settingsId = "case";
  fillEvents();
  chooseEvent(state.eventId);
}

async function save(allow = {}) {
  const text = editor.state.doc.toString();
  const answer = await api("/api/save", { preset: state.preset, text, digest: state.digest, ...allow });
  const data = answer.data;
  if (answer.status === 409 && data.reason === "invalid") {
    return banner(`Not saved: ${data.message}.`, "warn", { label: "Save anyway", run: () => save({ ...allow, allow_invalid: true }) });
  }
  if (answer.status === 409 && data.reason === "changed") {
    return banner(`Not saved: ${data.message}.`, "warn", { label: "Overwrite it", run: () => save({ ...allow, allow_changed: true }) });
  }
  if (!answer.ok) return banner(`Not saved: ${data.message}`, "bad");
  state.savedText = text;
  state.digest = data.digest;
  $("dirty").hidden = true;
  banner(`Saved ${data.file}` + (data.errors.length ? ` with ${data.errors.length} error(s).` : " (exactly as written: comments and layout kept)."), data.errors.length ? "warn" : "good");
}

// -- start ------------------------------------------------------------------------------

document.querySelectorAll(".tabs button").forEach((button) => {
  button.onclick = () => {
    document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", String(b === button)));
    document.querySelectorAll(".panel").forEach((panel) => (panel.hidden = panel.id !== `tab-${button.dataset.tab}`));
  };
});
$("preset").onchange = (e) => openPreset(e.target.value);
$("event").onchange = (e) => chooseEvent(e.target.value);
$("settings").onchange = (e) => {
  state.settingsId = e.target.value;
  state.settingsTouched = true;
  schedulePreview(0);
};
$("save").onclick = () => save();
$("send").onclick = sendToFake;
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "s") {
    e.preventDefault();
    if (!state.readOnly) save();
  }
});
window.addEventListener("beforeunload", (e) => {
  if (state.preset && editor.state.doc.toString() !== state.savedText) e.preventDefault();
});

async function start() {
  if (!token) {
    banner("This page needs the URL that `relay studio` printed: it carries the token that lets the page read and write.", "bad");
    return;
  }
  const [presets, schema] = await Promise.all([api("/api/presets"), api("/api/schema")]);
  if (!presets.ok) return banner(presets.data.message, "bad");
  state.schema = schema.ok ? schema.data : null;
  clear($("preset"), presets.data.presets.map((p) => el("option", { value: p.name, text: p.name })));
  clear($("fault"), presets.data.faults.map((f) => el("option", { value: f.id, text: f.label })));
  const wanted = decodeURIComponent(location.hash.slice(1));
  const names = presets.data.presets.map((p) => p.name);
  if (!names.length) return banner(`No presets under ${presets.data.root}.`, "bad");
  await openPreset(names.includes(wanted) ? wanted : names[0]);
}

start();
