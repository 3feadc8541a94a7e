// Completion and hover help for preset YAML, driven by schemas/preset.schema.json.
//
// The YAML path at the cursor is read from indentation (block style, as presets are
// written); the schema is walked along that path through $ref, oneOf/anyOf/allOf,
// properties, additionalProperties and items. Validation is not done here: the
// server compiles the text exactly as `relay validate` does and the page shows
// those errors, so there is one judge of what is valid.

import { hoverTooltip } from "@codemirror/view";

const KEY_LINE = /^(\s*)((?:-\s+)*)([A-Za-z_$][\w$.-]*|"[^"]*"|'[^']*')\s*:(?:\s|$)/;

function unquote(key) {
  return key.replace(/^["']|["']$/g, "");
}

// One line read for its structure: indentation, sequence dashes, key and key column.
function parseLine(text) {
  if (!text.trim() || text.trim().startsWith("#")) return null;
  const indent = text.match(/^\s*/)[0].length;
  const match = text.match(KEY_LINE);
  const dashes = text.slice(indent).match(/^(?:-\s+)*/)[0];
  if (!match) return { indent, dashes, key: null, keyCol: indent + dashes.length };
  return { indent, dashes, key: unquote(match[3]), keyCol: match[1].length + match[2].length };
}

// The chain of keys ("[]" for a sequence item) leading to the node at column `col`
// of line number `lineNo`, read upwards from the line above it.
function parents(doc, lineNo, col, inItemAt) {
  const path = [];
  if (col === 0 && inItemAt === null) return path;
  let cur = col;
  let afterDash = false;
  if (inItemAt !== null) {
    path.unshift("[]");
    cur = inItemAt;
    afterDash = true;
  }
  for (let n = lineNo - 1; n >= 1; n--) {
    const line = parseLine(doc.line(n).text);
    if (!line) continue;
    if (line.dashes) {
      const dash = line.indent;
      if (afterDash) {
        // Another item of the same sequence, or the item holding the key that holds it.
        if (dash < cur && line.key !== null && line.keyCol <= cur) {
          path.unshift(line.key, "[]");
          cur = dash;
        }
        continue;
      }
      if (line.keyCol === cur) {
        path.unshift("[]");
        cur = dash;
        afterDash = true;
      } else if (line.keyCol < cur && line.key !== null) {
        path.unshift(line.key, "[]");
        cur = dash;
        afterDash = true;
      }
      continue;
    }
    if (line.key === null) continue;
    if ((afterDash && line.keyCol <= cur) || (!afterDash && line.keyCol < cur)) {
      path.unshift(line.key);
      cur = line.keyCol;
      afterDash = false;
      if (cur === 0) break;
    }
  }
  return path;
}

// What the cursor is on: a key being typed (with its parent path) or a value (with its key's path).
export function cursorContext(state, pos) {
  const line = state.doc.lineAt(pos);
  const before = line.text.slice(0, pos - line.from);
  const keyTyping = before.match(/^(\s*)((?:-\s+)*)([\w$.-]*)$/);
  if (keyTyping) {
    const col = keyTyping[1].length + keyTyping[2].length;
    const inItemAt = keyTyping[2] ? keyTyping[1].length : null;
    return {
      mode: "key",
      path: parents(state.doc, line.number, col, inItemAt),
      from: pos - keyTyping[3].length,
      col,
      lineNo: line.number,
    };
  }
  const valueTyping = before.match(/^(\s*)((?:-\s+)*)([A-Za-z_$][\w$.-]*)\s*:\s+([^#{[]*)$/);
  if (valueTyping) {
    const col = valueTyping[1].length + valueTyping[2].length;
    const inItemAt = valueTyping[2] ? valueTyping[1].length : null;
    const path = parents(state.doc, line.number, col, inItemAt);
    return { mode: "value", path: [...path, valueTyping[3]], from: pos - valueTyping[4].length };
  }
  return null;
}

function deref(root, schema, seen = 0) {
  let node = schema;
  while (node && node.$ref && seen++ < 32) {
    const parts = node.$ref.replace(/^#\/?/, "").split("/").filter(Boolean);
    node = parts.reduce((at, part) => (at ? at[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), root);
  }
  return node;
}

// A schema and every branch it may take (oneOf/anyOf/allOf, then/else), flattened.
function branches(root, schema, depth = 0) {
  const node = deref(root, schema);
  if (!node || typeof node !== "object" || depth > 12) return [];
  const out = [node];
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    for (const sub of node[key] || []) out.push(...branches(root, sub, depth + 1));
  }
  for (const key of ["then", "else"]) if (node[key]) out.push(...branches(root, node[key], depth + 1));
  return out;
}

function child(root, schemas, key) {
  const out = [];
  for (const schema of schemas) {
    for (const branch of branches(root, schema)) {
      if (key === "[]") {
        if (branch.items && typeof branch.items === "object") out.push(branch.items);
        continue;
      }
      if (branch.properties && key in branch.properties) out.push(branch.properties[key]);
      else if (branch.patternProperties) {
        for (const [pattern, sub] of Object.entries(branch.patternProperties)) {
          if (new RegExp(pattern).test(key)) out.push(sub);
        }
      } else if (branch.additionalProperties && typeof branch.additionalProperties === "object") {
        out.push(branch.additionalProperties);
      }
    }
  }
  return out;
}

export function schemasAt(root, path) {
  return path.reduce((schemas, key) => child(root, schemas, key), [root]);
}

function describe(root, schema) {
  const node = deref(root, schema) || {};
  const all = branches(root, node);
  const text = all.map((b) => b.description).find(Boolean) || "";
  const title = all.map((b) => b.title).find(Boolean) || "";
  const types = [...new Set(all.flatMap((b) => (b.type ? [].concat(b.type) : b.enum ? ["enum"] : [])))];
  return { text, title, types };
}

// Keys already written in the mapping the cursor is in (so completion does not offer them again).
function siblingKeys(doc, lineNo, col) {
  const keys = new Set();
  for (const step of [-1, 1]) {
    for (let n = lineNo + step; n >= 1 && n <= doc.lines; n += step) {
      const line = parseLine(doc.line(n).text);
      if (!line) continue;
      if (line.keyCol < col) break;
      const itemStart = line.dashes && line.keyCol === col;
      if (itemStart && step === 1) break; // the next item of the sequence: not our mapping
      if (line.keyCol === col && line.key) keys.add(line.key);
      if (itemStart) break; // the first key of our item
    }
  }
  return keys;
}

export function schemaCompletion(getSchema) {
  return (context) => {
    const root = getSchema();
    if (!root) return null;
    const at = cursorContext(context.state, context.pos);
    if (!at) return null;
    const schemas = schemasAt(root, at.path);
    if (at.mode === "key") {
      if (!context.explicit && context.pos === at.from && !context.matchBefore(/[-\s]$/)) return null;
      const present = siblingKeys(context.state.doc, at.lineNo, at.col);
      const options = new Map();
      for (const schema of schemas) {
        for (const branch of branches(root, schema)) {
          for (const [key, sub] of Object.entries(branch.properties || {})) {
            if (present.has(key) || options.has(key)) continue;
            const about = describe(root, sub);
            options.set(key, {
              label: key,
              type: "property",
              detail: about.types.join(" | ") || about.title,
              info: [about.title, about.text].filter(Boolean).join(": ") || undefined,
              apply: `${key}: `,
              boost: (branch.required || []).includes(key) ? 1 : 0,
            });
          }
        }
      }
      return options.size ? { from: at.from, options: [...options.values()], validFor: /^[\w$.-]*$/ } : null;
    }
    const values = new Map();
    for (const schema of schemas) {
      for (const branch of branches(root, schema)) {
        for (const value of branch.enum || (branch.const !== undefined ? [branch.const] : [])) {
          values.set(String(value), { label: String(value), type: "enum" });
        }
        if ([].concat(branch.type || []).includes("boolean")) {
          values.set("true", { label: "true", type: "keyword" });
          values.set("false", { label: "false", type: "keyword" });
        }
      }
    }
    return values.size ? { from: at.from, options: [...values.values()], validFor: /^[\w$.-]*$/ } : null;
  };
}

// Hover on a key: what the schema says about it.
export function schemaHover(getSchema) {
  return hoverTooltip((view, pos) => {
    const root = getSchema();
    if (!root) return null;
    const line = view.state.doc.lineAt(pos);
    const parsed = parseLine(line.text);
    if (!parsed || !parsed.key) return null;
    const start = line.from + parsed.keyCol;
    const end = start + parsed.key.length;
    if (pos < start || pos > end) return null;
    const inItemAt = parsed.dashes ? parsed.indent : null;
    const path = [...parents(view.state.doc, line.number, parsed.keyCol, inItemAt), parsed.key];
    const schemas = schemasAt(root, path);
    if (!schemas.length) return null;
    const about = describe(root, schemas[0]);
    if (!about.text && !about.title) return null;
    return {
      pos: start,
      end,
      above: true,
      create() {
        const dom = document.createElement("div");
        dom.className = "cm-schema-hover";
        const head = document.createElement("div");
        head.className = "cm-schema-hover-head";
        head.textContent = `${path.join(".").replace(/\.\[\]/g, "[]")}${about.types.length ? "  ·  " + about.types.join(" | ") : ""}`;
        const body = document.createElement("div");
        body.textContent = [about.title, about.text].filter(Boolean).join(": ");
        dom.append(head, body);
        return { dom };
      },
    };
  });
}
