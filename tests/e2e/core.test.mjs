// The core in the browser: trains on WebGPU, and agrees with Flex (CPU) step by step.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, watchErrors, requireWebGpu } from './harness.mjs';

let server, base, browser, page, errors;
// Tiny on purpose: SwiftShader runs WebGPU on the CPU.
const TINY = { dataset: 'shapes', imageSize: 16, latent: 16, width: 8, batch: 8, grid: 4, seed: 3 };

before(async () => {
  ({ server, base } = await startServer());
  browser = await launch();
  page = await browser.newPage();
  errors = watchErrors(page);
  // GAN_PKG=www/pkg-exp runs these tests against another build (README: why fusion is off).
  await page.goto(`${base}/tests/e2e/core.html?pkg=${process.env.GAN_PKG || 'www/pkg'}`);
  await page.evaluate(() => window.ganReady);
  const adapter = await requireWebGpu(page);
  console.log('adapter', JSON.stringify(adapter));
  assert.equal(await page.evaluate(() => window.gan.init_backend('webgpu')), 'webgpu');
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the core trains on WebGPU with finite losses and changing samples', { timeout: 600_000 }, async () => {
  const ticks = await page.evaluate(async (settings) => {
    const session = new window.gan.Session(settings);
    const out = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await session.run(2);
      out.push({ step: Number(r.step), d: r.d_loss, g: r.g_loss, ms: performance.now() - t0,
        w: r.width, h: r.height, rgba: Array.from(r.rgba) });
      r.free();
    }
    return out;
  }, TINY);
  for (const t of ticks) console.log(`step ${t.step}: D ${t.d.toFixed(4)} G ${t.g.toFixed(4)} (${t.ms.toFixed(0)} ms)`);
  assert.deepEqual(ticks.map((t) => t.step), [2, 4, 6]);
  for (const t of ticks) assert.ok(Number.isFinite(t.d) && Number.isFinite(t.g), `finite losses at ${t.step}`);
  assert.equal(ticks[0].w, 2 * 16 + 3); // 2x2 grid of 16 px tiles with 1 px gaps
  assert.notDeepEqual(ticks[0].rgba, ticks[2].rgba, 'samples change as G trains');
  assert.deepEqual(errors, []);
});

test('WebGPU and Flex agree on the forward pass and the first training steps', { timeout: 600_000 }, async () => {
  const rows = await page.evaluate((s) => window.gan.parity_check(s, 3), TINY);
  for (const r of rows) {
    console.log(`parity step ${r.step}: gpu D ${r.lossesGpu[0].toFixed(5)} G ${r.lossesGpu[1].toFixed(5)} | cpu D ${r.lossesCpu[0].toFixed(5)} G ${r.lossesCpu[1].toFixed(5)} | max |sample diff| ${r.sampleMaxDiff.toExponential(2)}`);
  }
  assert.equal(rows.length, 4);
  // Untrained forward: only float summation order differs (SwiftShader: ~1e-7).
  assert.ok(rows[0].sampleMaxDiff < 1e-4, `forward differs by ${rows[0].sampleMaxDiff}`);
  for (const r of rows.slice(1)) {
    for (const k of [0, 1]) {
      const [a, b] = [r.lossesGpu[k], r.lossesCpu[k]];
      assert.ok(Number.isFinite(a), `WebGPU loss ${k} is ${a} at step ${r.step}`);
      // Adam's first steps can amplify tiny gradient differences (update ~ lr * sign(g)), so
      // trained steps get a looser bound than the forward pass (SwiftShader: ~1e-6).
      assert.ok(Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(b)), `loss ${k} at step ${r.step}: WebGPU ${a} vs Flex ${b}`);
    }
    assert.ok(r.sampleMaxDiff < 1e-2, `samples differ by ${r.sampleMaxDiff} at step ${r.step}`);
  }
  assert.deepEqual(errors, []);
});

test('bad settings are refused with a message naming the setting, and nothing breaks', { timeout: 120_000 }, async () => {
  const messages = await page.evaluate(async (tiny) => {
    const out = [];
    for (const bad of [{ imageSize: 48 }, { batch: 1 }, { loss: 'wasserstein' }, { dataset: 'cats' }, { latent: 1e9 }]) {
      try { new window.gan.Session({ ...tiny, ...bad }); out.push('accepted'); } catch (e) { out.push(e.message); }
    }
    return out;
  }, TINY);
  assert.match(messages[0], /image_size.*48/);
  assert.match(messages[1], /batch/);
  assert.match(messages[2], /loss.*wasserstein/);
  assert.match(messages[3], /cats/);
  assert.match(messages[4], /latent/);
  assert.deepEqual(errors, []);
});
