// Static server on 127.0.0.1, shared by `.ci/serve` (the page) and the browser tests (the repository
// root). The wasm goes out precompressed (`.br` or `.gz` beside it, made by .ci/build-web) with
// `Content-Type: application/wasm`, so the browser compiles it while it streams in
// (`WebAssembly.instantiateStreaming`, which wasm-bindgen's loader uses when the type is right).
//   node .ci/serve.mjs [port] [root]      (defaults: 8080, www/)
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json' };
// Best first. Brotli is only offered by browsers over secure origins (https, localhost).
const ENCODINGS = [['br', '.br'], ['gzip', '.gz']];

// The file's stat when it is a plain file, else null.
async function fileStat(file) {
  try { const s = await fs.stat(file); return s.isFile() ? s : null; } catch { return null; }
}

// The file to send for `file`: a precompressed sibling the client accepts, when one exists and is
// not older than the file (a stale `.gz` after a rebuild must never be served).
async function pick(file, acceptEncoding) {
  const accepted = new Set(String(acceptEncoding || '').split(',').map((e) => e.trim().split(';')[0]));
  const stat = await fs.stat(file);
  for (const [name, ext] of ENCODINGS) {
    const packed = accepted.has(name) && (await fileStat(file + ext));
    if (packed && packed.mtimeMs >= stat.mtimeMs) return { path: file + ext, encoding: name };
  }
  return { path: file, encoding: null };
}

export async function startServer({ root, port = 0 } = {}) {
  const base = path.resolve(root);
  const server = http.createServer(async (req, res) => {
    const file = path.join(base, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    // Inside the root only (`/root-other/…` shares the prefix but is outside).
    if (file !== base && !file.startsWith(base + path.sep)) { res.writeHead(403).end(); return; }
    try {
      const target = (await fileStat(file)) ? file : path.join(file, 'index.html');
      const { path: send, encoding } = await pick(target, req.headers['accept-encoding']);
      const body = await fs.readFile(send);
      const headers = { 'Content-Type': TYPES[path.extname(target)] || 'application/octet-stream',
        'Content-Length': body.length, 'Cache-Control': 'no-cache', Vary: 'Accept-Encoding' };
      if (encoding) headers['Content-Encoding'] = encoding;
      res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const port = Number(process.argv[2] || 8080);
  const root = process.argv[3] || path.join(here, '..', 'www');
  const { base } = await startServer({ root, port }).catch((e) => {
    console.error(`cannot serve on port ${port}: ${e.message}`);
    process.exit(1);
  });
  console.log(`GAN Playground: open ${base}/ (Ctrl-C stops)`);
}
