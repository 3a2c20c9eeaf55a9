// Measures (not a test) loading many pictures in the page: N pictures (default 10,000) of
// 80x64 px are drawn in the page, dropped on it, prepared at 64 px, then a few steps are
// trained; prints the load time, the prepared set's size and the worker's wasm memory.
// Run after `.ci/build-web`:  node tests/e2e/many-pictures.mjs [--count=10000]
import { startServer, launch, requireWebGpu } from './harness.mjs';

const count = Number((process.argv.find((a) => a.startsWith('--count=')) || '--count=10000').split('=')[1]);
const { server, base } = await startServer();
const browser = await launch();
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/www/index.html?imageSize=64&batch=8&width=8&latent=16&qualityEvery=1000000`);
  await requireWebGpu(page);
  await page.waitForFunction(() => !document.getElementById('add-pictures').disabled, null, { timeout: 120_000 });
  const drawn = Date.now();
  await page.evaluate(async (count) => {
    const d = new DataTransfer();
    const c = new OffscreenCanvas(80, 64);
    const g = c.getContext('2d');
    for (let i = 0; i < count; i++) {
      g.fillStyle = `hsl(${(i * 37) % 360} 50% 70%)`; g.fillRect(0, 0, 80, 64);
      g.fillStyle = `hsl(${(i * 101) % 360} 80% 35%)`;
      g.beginPath(); g.arc(10 + (i % 60), 10 + ((i / 60) % 44), 6 + (i % 7), 0, Math.PI * 2); g.fill();
      g.fillText(String(i), 4, 60); // every picture distinct
      d.items.add(new File([await c.convertToBlob({ type: 'image/png' })], `p${i}.png`, { type: 'image/png' }));
    }
    window.__drop = d;
  }, count);
  console.log(`drew ${count} PNGs in the page in ${((Date.now() - drawn) / 1000).toFixed(1)} s`);
  const start = Date.now();
  await page.evaluate(() => document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: window.__drop, bubbles: true, cancelable: true })));
  await page.waitForFunction((n) => document.getElementById('upload-text').textContent.startsWith(`${n} pictures ready`), count, { timeout: 1_800_000, polling: 1000 });
  const loaded = (Date.now() - start) / 1000;
  const u = await page.evaluate(() => window.ganDebug.upload());
  console.log(`loaded ${u.count} pictures at 64 px in ${loaded.toFixed(1)} s (${(u.count / loaded).toFixed(0)} pictures/s); ` +
    `prepared set ${(u.count * 64 * 64 * 3 / 1e6).toFixed(1)} MB; worker wasm memory ${(u.wasmBytes / 1e6).toFixed(0)} MB`);
  await page.getByRole('button', { name: 'Step once', exact: true }).click();
  await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 1, null, { timeout: 600_000 });
  console.log(`trained a step on them; notice: "${await page.locator('#notice-text').textContent()}"; page errors: ${errors.length}`);
} finally {
  await browser.close();
  server.close();
}
