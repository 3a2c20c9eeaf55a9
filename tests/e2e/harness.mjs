// Shared by the browser tests: a static server over the repository root on 127.0.0.1 and
// headless Debian Chromium with WebGPU (a SwiftShader adapter where there is no GPU).
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json' };

export async function startServer() {
  const server = http.createServer(async (req, res) => {
    const file = path.join(ROOT, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (!file.startsWith(ROOT)) { res.writeHead(403).end(); return; }
    try {
      const body = await fs.readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

const ARGS = ['--no-sandbox', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic'];

// Headless Chromium; `webgpu: false` launches it without the WebGPU flag (no adapter on Linux).
export async function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: webgpu ? ['--enable-unsafe-webgpu', ...ARGS] : ARGS,
  });
}

// Headless Chromium with a profile kept in `dir` (IndexedDB survives a relaunch, as for a user).
export async function launchPersistent(dir) {
  return chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', ...ARGS],
    viewport: { width: 1200, height: 900 },
  });
}

// Collects page errors, unhandled rejections and console errors, so a test can assert none.
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

// Fails loudly when this browser has no WebGPU adapter: the tests are about WebGPU.
export async function requireWebGpu(page) {
  const info = await page.evaluate(async () => {
    if (!navigator.gpu) return { error: 'navigator.gpu is missing' };
    const a = await navigator.gpu.requestAdapter();
    if (!a) return { error: 'requestAdapter() returned null' };
    return { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description };
  });
  if (info.error) throw new Error(`No WebGPU adapter in headless Chromium (${info.error}); start it with --enable-unsafe-webgpu and install mesa-vulkan-drivers`);
  return info;
}
