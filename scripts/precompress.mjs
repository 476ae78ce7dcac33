// Writes a brotli (.br) and a gzip (.gz) copy beside every compressible file of the site root, at
// the highest levels, once per build, so the server sends them without compressing per request.
// A copy that would not be smaller is not written (and an older one is removed), so the server
// never prefers it. Node's own zlib: nothing to install.
//
// precompressed.json in the site root lists each file copies were written of, with the SHA-256 of
// the bytes compressed: the server sends a copy only while its file still has that digest
// (server/src/assets.rs), so copies left by another build are never sent.
//
//   node scripts/precompress.mjs SITE_ROOT          highest levels (release builds)
//   node scripts/precompress.mjs SITE_ROOT --fast   quick levels, for debug builds (a debug bundle
//                                                   is many megabytes: brotli's best takes a minute)
import { createHash } from 'node:crypto';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';

const COMPRESSIBLE = new Set(['.js', '.mjs', '.wasm', '.css', '.html', '.svg', '.json', '.txt', '.map']);
// Below this a compressed copy saves less than its headers cost.
const MIN_BYTES = 1024;
const MANIFEST = 'precompressed.json';

const [root, mode] = process.argv.slice(2);
const fast = mode === '--fast';
if (!root || (mode && !fast)) {
  console.error('usage: node scripts/precompress.mjs SITE_ROOT [--fast]');
  process.exit(2);
}

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

const manifestPath = join(root, MANIFEST);
// Gone while the copies are rewritten: a server starting meanwhile trusts none of them.
rmSync(manifestPath, { force: true });
const manifest = {};
let before = 0;
let after = 0;
for (const path of files(root)) {
  if (!COMPRESSIBLE.has(extname(path))) continue;
  const data = readFileSync(path);
  let copied = false;
  const copies = {
    '.br': () =>
      brotliCompressSync(data, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: fast ? 5 : constants.BROTLI_MAX_QUALITY,
          [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
          [constants.BROTLI_PARAM_MODE]: extname(path) === '.wasm' ? constants.BROTLI_MODE_GENERIC : constants.BROTLI_MODE_TEXT,
        },
      }),
    '.gz': () => gzipSync(data, { level: fast ? 6 : 9 }),
  };
  for (const [suffix, compress] of Object.entries(copies)) {
    const copy = path + suffix;
    const packed = data.length >= MIN_BYTES ? compress() : null;
    if (packed && packed.length < data.length) {
      writeFileSync(copy, packed);
      copied = true;
    } else {
      rmSync(copy, { force: true });
    }
  }
  if (copied) {
    manifest[relative(root, path).split(sep).join('/')] = createHash('sha256').update(data).digest('hex');
  }
  if (statSync(path).size >= MIN_BYTES) {
    before += data.length;
    after += statSync(path + '.br', { throwIfNoEntry: false })?.size ?? data.length;
  }
}
writeFileSync(manifestPath, JSON.stringify(manifest, null, 1) + '\n');
console.log(`precompressed ${root}: ${(before / 1024).toFixed(0)} KB -> ${(after / 1024).toFixed(0)} KB with brotli`);
