// Diagnostic (not a test): a CPU profile of two tiny-model WebGPU steps on core.html, self time
// per function. Needs a wasm with its name section: GAN_WEB_OPT= .ci/build-web (no wasm-opt).
// Writes /tmp/tiny.cpuprofile (open it in Chrome DevTools, Performance).
import fs from 'node:fs';
import { startServer, launch } from './harness.mjs';
const { server, base } = await startServer();
const browser = await launch();
try {
  const core = await browser.newPage();
  await core.goto(`${base}/tests/e2e/core.html`);
  await core.evaluate(() => window.ganReady);
  await core.evaluate(() => window.gan.init_backend('webgpu'));
  await core.evaluate(async () => { window.s = new window.gan.Session({ dataset: 'shapes', imageSize: 16, latent: 16, width: 8, batch: 8, grid: 16 }); (await window.s.run(1)).free(); });
  const cdp = await core.context().newCDPSession(core);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  const ms = await core.evaluate(async () => { const t = performance.now(); for (let i = 0; i < 2; i++) (await window.s.run(1)).free(); return performance.now() - t; });
  const { profile } = await cdp.send('Profiler.stop');
  console.log('2 steps', ms.toFixed(0), 'ms');
  fs.writeFileSync('/tmp/tiny.cpuprofile', JSON.stringify(profile));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map(); const dt = profile.timeDeltas;
  profile.samples.forEach((id, i) => { const n = byId.get(id); const k = n.callFrame.functionName || `(${n.callFrame.url})`; self.set(k, (self.get(k) || 0) + (dt[i] || 0)); });
  const tot = [...self.values()].reduce((a, b) => a + b, 0);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log((v / 1000).toFixed(0).padStart(6), 'ms', k.slice(0, 160));
  console.log('total', (tot / 1000).toFixed(0));
} finally { await browser.close(); server.close(); }
