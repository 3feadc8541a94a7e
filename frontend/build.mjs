// Build the studio page into engine/studio/static/ (committed, so installing relay needs no Node):
//   studio.js                 src/main.js and CodeMirror, bundled and minified by esbuild
//   index.html, studio.css    copied from src/
//   THIRD-PARTY-LICENSES.txt  the licence of every npm package the bundle contains
// Run: npm ci && npm run build   (in this folder)

import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "engine", "studio", "static");
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  outfile: join(out, "studio.js"),
  legalComments: "none", // the licences go, whole, into THIRD-PARTY-LICENSES.txt
  metafile: true,
  logLevel: "warning",
});
for (const name of ["index.html", "studio.css"]) copyFileSync(join(here, "src", name), join(out, name));

// Every package a bundled file came from, with its licence text.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!match || packages.has(match[1])) continue;
  const folder = join(here, "node_modules", match[1]);
  const meta = JSON.parse(readFileSync(join(folder, "package.json"), "utf8"));
  const licenceFile = readdirSync(folder).find((f) => /^licen[cs]e/i.test(f));
  if (!licenceFile) throw new Error(`${match[1]} ships no licence file: check its terms before bundling it`);
  packages.set(match[1], { version: meta.version, license: meta.license, text: readFileSync(join(folder, licenceFile), "utf8").trim() });
}
const names = [...packages.keys()].sort();
const sections = names.map((name) => {
  const p = packages.get(name);
  return `${"=".repeat(78)}\n${name} ${p.version} (${p.license})\n${"=".repeat(78)}\n${p.text}\n`;
});
writeFileSync(
  join(out, "THIRD-PARTY-LICENSES.txt"),
  `relay studio bundles these npm packages into studio.js (built by frontend/build.mjs).\n\n${sections.join("\n")}`,
);
const size = readFileSync(join(out, "studio.js")).length;
console.log(`studio.js ${(size / 1024).toFixed(0)} KiB from ${names.length} packages: ${names.join(", ")}`);
if (!existsSync(join(out, "index.html"))) throw new Error("index.html was not copied");
