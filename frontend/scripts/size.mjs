// The JavaScript budget: what the home screen loads before it can render (index.html's script and its
// modulepreloads), gzipped. Fails the build above 200 KB. Prints one JSON line for the tests to read.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const sizes = Object.fromEntries(files.map((f) => [f, gzipSync(readFileSync(join(dist, f)), { level: 9 }).length]));
const total = Object.values(sizes).reduce((a, b) => a + b, 0);
const LIMIT = 200 * 1024;
console.log(JSON.stringify({ initial_js_gzip_bytes: total, limit: LIMIT, files: sizes }));
if (files.length === 0 || total > LIMIT) {
  console.error(files.length === 0 ? "no script found in dist/index.html" : `initial JS ${total} B gzipped > ${LIMIT} B`);
  process.exit(1);
}
