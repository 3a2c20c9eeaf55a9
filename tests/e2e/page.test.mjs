// End to end: open the served page, train a tiny GAN on WebGPU in the worker, watch the samples
// and losses update, pause, and look at the page (a screenshot lands in target/e2e/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startServer, launch, watchErrors, requireWebGpu, ROOT } from './harness.mjs';

let server, base, browser, page, errors;
const TINY = 'dataset=shapes&imageSize=16&batch=8&width=8&latent=16&seed=2';
const wasmResponses = [], warnings = [];

before(async () => {
  ({ server, base } = await startServer());
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  errors = watchErrors(page);
  // The worker's fetch of the wasm shows here too (Chromium reports a dedicated worker's requests
  // on its page), as do its console warnings.
  page.on('response', (r) => { if (r.url().endsWith('.wasm')) wasmResponses.push(r); });
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  await page.goto(`${base}/www/index.html?${TINY}`);
  await requireWebGpu(page);
});

after(async () => {
  await browser?.close();
  server?.close();
});

// Pixels of a canvas as an array, plus whether they vary at all.
async function canvasPixels(id) {
  return page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let min = 255, max = 0;
    for (let i = 0; i < d.length; i += 4) { min = Math.min(min, d[i], d[i + 1], d[i + 2]); max = Math.max(max, d[i], d[i + 1], d[i + 2]); }
    return { w: c.width, h: c.height, min, max, data: Array.from(d) };
  }, id);
}

const stepCount = async () => Number(await page.locator('#step-count').textContent());

test('every control has a visible label or name', async () => {
  for (const name of ['Train', 'Pause', 'Step once', 'Reset', 'Download model']) {
    assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, `button ${name}`);
  }
  for (const label of ['Dataset', 'Image size', 'Batch size (images)', 'Network width (channels)', 'Latent size',
    'Generator learning rate', 'Discriminator learning rate', 'Loss', 'DiffAugment (helps small sets)', 'Samples from', 'Seed', 'Backend', 'Sample seed', 'Truncation', 'Colour', 'Shape', 'Background (transparency, padding)']) {
    assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, `control labelled ${label}`);
  }
  for (const name of ['Real images from the dataset', 'Generated samples', 'Loss chart']) {
    assert.equal(await page.getByLabel(name).count(), 1, `canvas ${name}`);
  }
});

test('the wasm arrives compressed, typed application/wasm, and compiles while streaming', { timeout: 120_000 }, async () => {
  await page.waitForSelector('#backend[data-backend]', { timeout: 120_000 });
  assert.equal(wasmResponses.length, 1, `one wasm fetch: ${wasmResponses.map((r) => r.url())}`);
  const r = wasmResponses[0];
  const headers = await r.allHeaders();
  assert.equal(headers['content-type'], 'application/wasm');
  assert.ok(['br', 'gzip'].includes(headers['content-encoding']), `content-encoding: ${headers['content-encoding']}`);
  const raw = (await fs.stat(path.join(ROOT, 'www/pkg/gan_playground_bg.wasm'))).size;
  const sent = Number(headers['content-length']);
  assert.ok(sent > 0 && sent < raw / 3, `${sent} bytes sent for ${raw} raw`);
  // wasm-bindgen's loader warns and falls back to a full download before compiling when
  // instantiateStreaming fails (wrong type, or a body the browser cannot decode).
  assert.deepEqual(warnings.filter((w) => /instantiateStreaming/.test(w)), []);
  console.log(`wasm: ${raw} bytes raw, ${sent} bytes sent as ${headers['content-encoding']}`);
});

test('trains on WebGPU: samples change, losses stay finite, Pause stops the counter', { timeout: 900_000 }, async () => {
  await page.waitForSelector('#backend[data-backend]', { timeout: 120_000 });
  const backend = await page.locator('#backend').getAttribute('data-backend');
  assert.equal(backend, 'webgpu', `page fell back to: ${await page.locator('#backend').textContent()} / ${await page.locator('#notice-text').textContent()}`);
  console.log('adapter shown:', await page.locator('#backend').textContent());

  await page.waitForFunction(() => document.getElementById('preview').width > 8);
  const preview = await canvasPixels('preview');
  assert.ok(preview.max - preview.min > 100, 'the dataset preview shows real images');

  const t0 = Date.now();
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 1, null, { timeout: 600_000 });
  console.log(`first tick after ${((Date.now() - t0) / 1000).toFixed(1)} s; page says first samples after ${await page.locator('#first-samples').textContent()}, trained ${await page.locator('#first-step').textContent()}`);
  const first = await canvasPixels('samples');
  const firstStep = await stepCount();
  await page.waitForFunction((s) => Number(document.getElementById('step-count').textContent) >= s + 3, firstStep, { timeout: 600_000 });
  const later = await canvasPixels('samples');
  console.log(`speed shown: ${await page.locator('#speed').textContent()}`);

  assert.equal(first.w, 6 * 16 + 7, '6x6 grid of 16 px samples');
  assert.ok(later.max - later.min > 20, `samples are not blank or constant (${later.min}..${later.max})`);
  assert.notDeepEqual(first.data, later.data, 'samples change as training goes on');
  for (const id of ['d-loss', 'g-loss']) {
    const v = Number(await page.locator(`#${id}`).textContent());
    assert.ok(Number.isFinite(v), `${id} is finite (${v})`);
  }
  // Two times, in seconds: the first grid (the untrained generator's) and the first trained one.
  const [firstGrid, firstTrained] = await Promise.all(['#first-samples', '#first-step'].map((id) => page.locator(id).textContent()));
  for (const t of [firstGrid, firstTrained]) assert.match(t, /^\d+(\.\d)? s$/);
  assert.ok(parseFloat(firstTrained) >= parseFloat(firstGrid), `first grid ${firstGrid}, first trained grid ${firstTrained}`);

  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  const paused = await stepCount();
  await page.waitForTimeout(4000);
  assert.equal(await stepCount(), paused, 'the step counter stops while paused');
  assert.equal(await page.getByRole('button', { name: 'Resume', exact: true }).isEnabled(), true);

  await fs.mkdir(path.join(ROOT, 'target/e2e'), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, 'target/e2e/page.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no page errors, unhandled rejections or console errors');
});

test('Download model saves a valid .safetensors file written on WebGPU, while training runs', { timeout: 300_000 }, async () => {
  await page.getByRole('button', { name: 'Resume', exact: true }).click();
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    page.getByRole('button', { name: 'Download model', exact: true }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^gan-playground-step-\d+\.safetensors$/);
  const bytes = await fs.readFile(await download.path());
  // safetensors: u64 little-endian header length, JSON header, then the tensor bytes.
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const meta = header.__metadata__;
  assert.equal(meta.format, 'gan-playground');
  assert.equal(JSON.parse(meta.model_config).image_size, 16);
  assert.match(meta.title, /Shapes/);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  assert.ok(names.includes('generator.out.weight') && names.some((k) => k.startsWith('discriminator.')), names.join());
  for (const k of names) assert.equal(header[k].dtype, 'F32', k);
  const end = Math.max(...names.map((k) => header[k].data_offsets[1]));
  assert.equal(bytes.length, 8 + n + end, 'the file ends where the last tensor does');
  // Training went on after the save.
  const s = Number(await page.locator('#step-count').textContent());
  await page.waitForFunction((s) => Number(document.getElementById('step-count').textContent) > s, s, { timeout: 120_000 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  assert.equal(await page.locator('#notice').isHidden(), true, await page.locator('#notice-text').textContent());
  assert.deepEqual(errors, []);
});

test('Reset clears the model and unlocks the settings', { timeout: 120_000 }, async () => {
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('step-count').textContent === '0');
  assert.equal(await page.getByLabel('Batch size (images)').isEnabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Train', exact: true }).isEnabled(), true);
  assert.deepEqual(errors, []);
});

test('Step once then Train at once: the ticks queue, no error', { timeout: 300_000 }, async () => {
  await page.getByRole('button', { name: 'Step once', exact: true }).click();
  // At once: by id, since the button reads "Resume" as soon as the model exists.
  await page.locator('#train').click();
  await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 3, null, { timeout: 300_000 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  assert.equal(await page.locator('#notice').isHidden(), true, await page.locator('#notice-text').textContent());
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('step-count').textContent === '0');
  assert.deepEqual(errors, []);
});

test('a crash in the core is shown and a new worker starts by itself', { timeout: 300_000 }, async () => {
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 120_000 });
  await page.evaluate(() => window.ganDebug.crash());
  // The model was reset before the crash, so the new worker starts empty and says what happened.
  await page.waitForFunction(() => /crashed: .*crash requested by the self-test.*training core was restarted; your pictures and settings are kept/
    .test(document.getElementById('notice-text').textContent), null, { timeout: 120_000 });
  await page.waitForFunction(() => !document.getElementById('step').disabled, null, { timeout: 120_000 });
  assert.equal(await page.getByLabel('Batch size (images)').inputValue(), '8', 'settings are kept');
  await page.getByRole('button', { name: 'Step once', exact: true }).click();
  await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 1, null, { timeout: 300_000 });
  // The panic was reported on the console by the hook; nothing else went wrong.
  const unexpected = errors.filter((e) => !/crash requested by the self-test|RuntimeError: unreachable/.test(e));
  assert.deepEqual(unexpected, []);
});

test('the CPU backend trains too, with a visible notice', { timeout: 300_000 }, async () => {
  const cpu = await browser.newPage();
  const cpuErrors = watchErrors(cpu);
  await cpu.goto(`${base}/www/index.html?${TINY}&backend=cpu`);
  await cpu.waitForSelector('#backend[data-backend]', { timeout: 120_000 });
  assert.equal(await cpu.locator('#backend').textContent(), 'CPU (Flex in WebAssembly)');
  assert.match(await cpu.locator('#notice-text').textContent(), /CPU/);
  await cpu.getByRole('button', { name: 'Train', exact: true }).click();
  await cpu.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 3, null, { timeout: 240_000 });
  assert.ok(Number.isFinite(Number(await cpu.locator('#g-loss').textContent())));
  await cpu.getByRole('button', { name: 'Pause', exact: true }).click();
  assert.deepEqual(cpuErrors, []);
  await cpu.close();
});
