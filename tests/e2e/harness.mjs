// Shared by the browser tests: a static server over the repository root on 127.0.0.1 and
// headless Debian Chromium with WebGPU (a SwiftShader adapter where there is no GPU).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer as serve } from '../../.ci/serve.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// The same server as `.ci/serve` (precompressed wasm, streamed), over the repository root.
export function startServer() {
  return serve({ root: ROOT });
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
