// Small DOM helpers. Every value from an event, a preset or a vendor goes in as text,
// never as HTML, so nothing an event carries can run on this page.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// Pretty JSON with its tokens coloured (built from text nodes).
export function jsonBlock(value, className = "") {
  const text = JSON.stringify(value, null, 2) ?? "null";
  const pre = el("pre", { class: `code json ${className}` });
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const match of text.matchAll(token)) {
    if (match.index > last) pre.append(text.slice(last, match.index));
    if (match[1] && match[2]) {
      pre.append(el("span", { class: "j-key", text: match[1] }), match[2]);
    } else if (match[1]) {
      pre.append(el("span", { class: "j-str", text: match[1] }));
    } else if (match[3]) {
      pre.append(el("span", { class: "j-lit", text: match[3] }));
    } else {
      pre.append(el("span", { class: "j-num", text: match[4] }));
    }
    last = match.index + match[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

// A value inline: strings as they are, anything else as compact JSON.
export function inline(value) {
  if (value === undefined) return el("span", { class: "muted", text: "(left out)" });
  if (value === null) return el("span", { class: "j-lit", text: "null" });
  if (typeof value === "string") return el("span", { class: "j-str", text: JSON.stringify(value) });
  if (typeof value === "number") return el("span", { class: "j-num", text: String(value) });
  if (typeof value === "boolean") return el("span", { class: "j-lit", text: String(value) });
  return el("code", { class: "j-obj", text: JSON.stringify(value) });
}

export function diffBlock(text) {
  const pre = el("pre", { class: "code diff" });
  for (const line of text.split("\n")) {
    let kind = "ctx";
    if (line.startsWith("+++") || line.startsWith("---")) kind = "file";
    else if (line.startsWith("@@")) kind = "hunk";
    else if (line.startsWith("+")) kind = "add";
    else if (line.startsWith("-")) kind = "del";
    else if (!line.startsWith(" ") && line) kind = "note";
    pre.append(el("span", { class: `d-${kind}`, text: line }), "\n");
  }
  return pre;
}

export function table(headers, rows, className = "") {
  return el(
    "table",
    { class: `grid ${className}` },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows),
  );
}

export function pill(text, kind) {
  return el("span", { class: `pill pill-${kind}`, text });
}
