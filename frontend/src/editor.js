// The two editors of the page: the preset's YAML, and a pasted event's JSON.

import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { json } from "@codemirror/lang-json";
import { yaml } from "@codemirror/lang-yaml";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  foldKeymap,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import { lintGutter, lintKeymap, setDiagnostics } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { EditorState } from "@codemirror/state";
import {
  crosshairCursor,
  drawSelection,
  dropCursor,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
} from "@codemirror/view";

import { schemaCompletion, schemaHover } from "./schema.js";

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "13px" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.55" },
  ".cm-gutters": { background: "var(--gutter)", borderRight: "1px solid var(--line)", color: "var(--muted)" },
  ".cm-activeLine": { background: "var(--active-line)" },
  ".cm-activeLineGutter": { background: "var(--active-line)" },
  ".cm-tooltip": { borderRadius: "6px", border: "1px solid var(--line)", boxShadow: "0 4px 14px rgba(0,0,0,.12)" },
  ".cm-tooltip-autocomplete ul li[aria-selected]": { background: "var(--accent)", color: "white" },
  ".cm-diagnostic-error": { borderLeft: "4px solid var(--bad)" },
});

function base(extra) {
  return [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    foldGutter(),
    drawSelection(),
    dropCursor(),
    EditorState.allowMultipleSelections.of(true),
    indentOnInput(),
    indentUnit.of("  "),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    bracketMatching(),
    closeBrackets(),
    rectangularSelection(),
    crosshairCursor(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    keymap.of([
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...searchKeymap,
      ...historyKeymap,
      ...foldKeymap,
      ...completionKeymap,
      ...lintKeymap,
      indentWithTab,
    ]),
    theme,
    ...extra,
  ];
}

export function presetEditor(parent, { onChange, getSchema }) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: "",
      extensions: base([
        yaml(),
        EditorView.lineWrapping,
        lintGutter(),
        autocompletion({ override: [schemaCompletion(getSchema)], activateOnTyping: true }),
        schemaHover(getSchema),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange(update.state.doc.toString());
        }),
      ]),
    }),
  });
  return view;
}

export function jsonEditor(parent, { onChange, doc }) {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: base([
        json(),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange(update.state.doc.toString());
        }),
      ]),
    }),
  });
}

export function replaceDoc(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, selection: { anchor: 0 } });
}

// Server errors (line/col as `relay validate` prints them) as editor diagnostics.
export function showErrors(view, errors) {
  const doc = view.state.doc;
  const diagnostics = errors.map((error) => {
    const line = doc.line(Math.min(Math.max(error.line, 1), doc.lines));
    const from = Math.min(line.from + Math.max(error.col - 1, 0), line.to);
    const word = line.text.slice(from - line.from).match(/^[^\s:,\]}]+/);
    const to = word ? from + word[0].length : line.to;
    return {
      from,
      to: Math.max(to, from),
      severity: "error",
      source: error.pointer,
      message: error.message + (error.hint ? `\nhint: ${error.hint}` : ""),
    };
  });
  view.dispatch(setDiagnostics(view.state, diagnostics));
}

export function goToLine(view, number) {
  const doc = view.state.doc;
  const line = doc.line(Math.min(Math.max(number, 1), doc.lines));
  view.dispatch({ selection: { anchor: line.from }, effects: EditorView.scrollIntoView(line.from, { y: "center" }) });
  view.focus();
}
