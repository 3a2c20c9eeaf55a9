// Prints the numbers the README quotes (not a test): wasm size, time from Train to the first
// sample grid and steps/s in the served page, and the reference DCGAN's step time on WebGPU.
// Run after `.ci/build-web`:  node tests/e2e/measure.mjs [--reference]
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { startServer, launch, requireWebGpu, ROOT } from './harness.mjs';

const wasm = fs.readFileSync(path.join(ROOT, 'www/pkg/gan_playground_bg.wasm'));
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
console.log(`wasm: ${mb(wasm.length)} raw, ${mb(zlib.gzipSync(wasm, { level: 9 }).length)} gzip -9`);

const { server, base } = await startServer();
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(`${base}/www/index.html?dataset=shapes&imageSize=16&batch=8&width=8&latent=16`);
  const adapter = await requireWebGpu(page);
  console.log(`adapter: ${JSON.stringify(adapter)}`);
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 120_000 });
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('first-step').textContent !== '–', null, { timeout: 600_000 });
  console.log(`page, 16x16x3 width 8 batch 8: first sample grid ${await page.textContent('#first-samples')}, first trained grid ${await page.textContent('#first-step')} after pressing Train`);
  const s0 = Number(await page.textContent('#step-count'));
  const t0 = Date.now();
  await page.waitForFunction((s) => Number(document.getElementById('step-count').textContent) >= s + 10, s0, { timeout: 600_000 });
  const s1 = Number(await page.textContent('#step-count'));
  console.log(`page, same config: ${((s1 - s0) / ((Date.now() - t0) / 1000)).toFixed(3)} steps/s over ${s1 - s0} steps (page shows ${await page.textContent('#speed')})`);
  await page.click('#pause');

  if (process.argv.includes('--reference')) {
    // The same on the page, with the reference DCGAN's settings (a fresh page: kernels compile).
    const ref = await browser.newPage();
    await ref.goto(`${base}/www/index.html?dataset=shapes&imageSize=32&batch=64&width=64&latent=100&recipe=reference`);
    await ref.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 120_000 });
    await ref.click('#train');
    await ref.waitForFunction(() => document.getElementById('first-step').textContent !== '–', null, { timeout: 900_000 });
    console.log(`page, reference DCGAN settings: first sample grid ${await ref.textContent('#first-samples')}, first trained grid ${await ref.textContent('#first-step')} after pressing Train`);
    await ref.click('#pause');
    await ref.close();

    const core = await browser.newPage();
    await core.goto(`${base}/tests/e2e/core.html`);
    await core.evaluate(() => window.ganReady);
    await core.evaluate(() => window.gan.init_backend('webgpu'));
    const times = await core.evaluate(async () => {
      const s = new window.gan.Session({ dataset: 'shapes', imageSize: 32, latent: 100, width: 64, batch: 64, grid: 64 });
      const out = [];
      for (let i = 0; i < 3; i++) { const t = performance.now(); (await s.run(1)).free(); out.push(performance.now() - t); }
      return out;
    });
    console.log(`reference DCGAN (32x32x3, latent 100, batch 64) on WebGPU, one step + readback each: ${times.map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')}`);
  }
} finally {
  await browser.close();
  server.close();
}
