// Install-time build of what /static/ serves (run by `npm run build`, so by
// `make setup`): every stylesheet and ES module minified one file for one
// file (same paths, same imports, so the module graph and its tests stay as
// written), and each written with a gzip and a brotli copy beside it, under
// the git-ignored static/dist/. The already-minified vendor bundles are only
// compressed. manifest.json records each source's SHA-256: Flask serves a
// built file only while its source is unchanged (crewreport/static_files.py).
//
// Besides, the crew app's two entries are bundled (BUNDLES): the page's
// js/app.js and the service worker's js/worker.js, each with every module it
// imports, into one minified ES module under bundles/ (served as
// /static/bundles/<name>, which has no source of its own), the modules both
// import in a shared chunk beside them. One file compresses far better than
// thirty: gzip starts afresh for each file. The
// vendor libraries stay separate files (imported by their absolute
// /static/vendor/ URLs; the post-quantum one is counted apart from the shell's
// budget). The manifest records the SHA-256 of every module a bundle holds;
// Flask serves a bundle only while all of them are unchanged.
//
//   node scripts/build-static.mjs [static-folder]
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";
import { gzipAsync as zopfliGzip } from "@gfx/zopfli";
import { buildSync, transformSync } from "esbuild";

const root = process.argv[2] || "static";
const out = join(root, "dist");
// Built aside and moved into place at the end, so a running server never
// finds half a build.
const building = join(root, `.dist-building-${process.pid}`);
// Folders of sources (relative to the static folder) and what is done to them.
const MINIFIED = ["css", "js"];
const AS_IS = ["vendor"];
const SKIP = ["js/vendor-entries"];
// Bundles (served as /static/<name>) and their entry modules.
const BUNDLES = { "bundles/app.js": "js/app.js", "bundles/worker.js": "js/worker.js" };
const VENDOR = "/static/vendor/*";

function walk(folder) {
  const found = [];
  for (const name of readdirSync(folder).sort()) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) found.push(...walk(path));
    else found.push(path);
  }
  return found;
}

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

function minify(rel, source) {
  const loader = rel.endsWith(".css") ? "css" : "js";
  const options = { loader, minify: true, legalComments: "none", charset: "utf8" };
  if (loader === "js") options.format = "esm";
  return Buffer.from(transformSync(source.toString("utf8"), options).code, "utf8");
}

function sources(folders) {
  const found = [];
  for (const folder of folders) {
    let files = [];
    try {
      files = walk(join(root, folder));
    } catch {
      continue; // static/vendor/ is made by the build steps before this one
    }
    for (const path of files) {
      const rel = relative(root, path).split(sep).join("/");
      if (!/\.(js|css)$/.test(rel) || SKIP.some((s) => rel.startsWith(s + "/"))) continue;
      found.push(rel);
    }
  }
  return found;
}

// Both entries in one build, so the modules they share (the outbox) are one
// chunk that the page and the service worker both load, not two copies.
function bundles() {
  const result = buildSync({
    absWorkingDir: resolve(root),
    entryPoints: Object.entries(BUNDLES).map(([out, entry]) => ({ in: entry, out: out.replace(/\.js$/, "") })),
    outdir: ".",
    bundle: true,
    splitting: true,
    chunkNames: "bundles/chunk-[hash]",
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    charset: "utf8",
    external: [VENDOR],
    metafile: true,
    write: false,
    logLevel: "warning",
  });
  const built = {};
  for (const file of result.outputFiles) built[relative(resolve(root), file.path).split(sep).join("/")] = file.contents;
  const made = [];
  for (const [rel, output] of Object.entries(result.metafile.outputs)) {
    const inputs = {};
    for (const input of Object.keys(output.inputs).sort()) inputs[input] = sha256(readFileSync(join(root, input)));
    // The chunks it imports, which must be served (and precached) with it.
    const chunks = output.imports.filter((i) => !i.external).map((i) => i.path).sort();
    made.push([rel, Buffer.from(built[rel]), { inputs, chunks }]);
  }
  return made;
}

// gzip by Zopfli: the same format any client inflates, some 3 to 5 % smaller
// than zlib's best, for a second or two of build time.
async function write(rel, built, extra) {
  const gz = Buffer.from(await zopfliGzip(built, { numiterations: 15 }));
  const br = brotliCompressSync(built, {
    params: {
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: built.length,
    },
  });
  const target = join(building, rel);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, built);
  writeFileSync(target + ".gz", gz);
  writeFileSync(target + ".br", br);
  manifest[rel] = { ...extra, sha256: sha256(built), bytes: built.length, gzip: gz.length, br: br.length };
}

rmSync(building, { recursive: true, force: true });
const manifest = {};
for (const [rel, shrink] of [...sources(MINIFIED).map((r) => [r, true]), ...sources(AS_IS).map((r) => [r, false])]) {
  const source = readFileSync(join(root, rel));
  await write(rel, shrink ? minify(rel, source) : source, { source_sha256: sha256(source) });
}
for (const [rel, built, extra] of bundles()) await write(rel, built, extra);
writeFileSync(join(building, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
rmSync(out, { recursive: true, force: true });
renameSync(building, out);
