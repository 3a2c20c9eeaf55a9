// Model files end to end: train in the page, download, reload, load by the file input and by
// drop and see the same samples for the same seed; the native CLI draws the same images from the
// browser's file, and the page loads and continues a file the CLI trained; bad files are refused
// with a message while the loaded model stays; metadata is shown as text only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startServer, launch, watchErrors, requireWebGpu, ROOT } from './harness.mjs';

let server, base, browser, page, errors;
const TINY = 'dataset=shapes&imageSize=16&batch=8&width=8&latent=16&seed=3';
const OUT = path.join(ROOT, 'target/e2e');
const GAN = path.join(ROOT, 'target/release/gan');

before(async () => {
  await fs.mkdir(OUT, { recursive: true });
  // The CLI is built by the native tests; this is a no-op then, and builds it when run alone.
  execFileSync('cargo', ['build', '-q', '--release', '--bin', 'gan'], { cwd: ROOT, stdio: 'inherit' });
  ({ server, base } = await startServer());
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  errors = watchErrors(page);
  await page.goto(`${base}/www/index.html?${TINY}`);
  await requireWebGpu(page);
});

after(async () => {
  await browser?.close();
  server?.close();
});

const cli = (...args) => execFileSync(GAN, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// The sample canvas as RGBA bytes.
const samplePixels = () => page.evaluate(() => {
  const c = document.getElementById('samples');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
});

// A PNG decoded by the browser, as RGBA bytes.
const pngPixels = (file) => fs.readFile(file).then((b) => page.evaluate(async (b64) => {
  const img = new Image();
  img.src = `data:image/png;base64,${b64}`;
  await img.decode();
  const c = new OffscreenCanvas(img.width, img.height);
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, img.width, img.height).data);
}, b.toString('base64')));

// Waits until the sample canvas shows a grid captioned with this seed.
async function samplesFor(seed) {
  await page.waitForFunction((s) => document.getElementById('samples-caption').textContent.includes(`seed ${s},`), seed, { timeout: 300_000 });
  return samplePixels();
}

async function setSeed(seed) {
  await page.getByLabel('Sample seed', { exact: true }).fill(String(seed));
  await page.getByLabel('Sample seed', { exact: true }).dispatchEvent('change');
}

async function waitReady() {
  await page.waitForFunction(() => !document.getElementById('load').disabled, null, { timeout: 120_000 });
}

async function loadByInput(file) {
  await page.locator('#model-file').setInputFiles(file);
}

async function loadByDrop(file) {
  const b64 = (await fs.readFile(file)).toString('base64');
  const dt = await page.evaluateHandle(([b64, name]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([bytes], name));
    return d;
  }, [b64, path.basename(file)]);
  await page.dispatchEvent('body', 'drop', { dataTransfer: dt });
}

// Pixels equal up to float rounding between backends: at most 1 level apart, nearly all exact.
function assertSameImages(a, b, what) {
  assert.equal(a.length, b.length, `${what}: same grid size`);
  let off = 0, worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) off++;
    worst = Math.max(worst, d);
  }
  console.log(`${what}: ${off} of ${a.length} bytes differ, by at most ${worst}`);
  assert.ok(worst <= 1 && off / a.length < 0.01, `${what}: ${off} bytes differ, worst by ${worst}`);
}

let downloaded, pageGrid;

test('a model trained and downloaded in the page loads back by file input and by drop, with the same samples', { timeout: 900_000 }, async () => {
  await waitReady();
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 4, null, { timeout: 600_000 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  await setSeed(5);
  pageGrid = await samplesFor(5);
  const spread = Math.max(...pageGrid) - Math.min(...pageGrid.filter((v, i) => i % 4 !== 3 && v !== 64));
  assert.ok(spread > 20, `the samples are not flat (spread ${spread})`);
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    page.getByRole('button', { name: 'Download model', exact: true }).click(),
  ]);
  downloaded = path.join(OUT, 'page-model.safetensors');
  await download.saveAs(downloaded);
  const step = await page.locator('#step-count').textContent();

  await page.reload();
  await waitReady();
  await setSeed(5);
  await loadByInput(downloaded);
  await page.waitForSelector('#loaded:not([hidden])');
  assert.equal(await page.locator('#step-count').textContent(), step, 'the step travels in the file');
  assert.match(await page.locator('#loaded-name').textContent(), /Shapes/);
  assert.match(await page.locator('#loaded-dataset').textContent(), /built-in set shapes, 512 images/);
  assert.match(await page.locator('#loaded-resumable').textContent(), /^yes/);
  assert.deepEqual(await samplesFor(5), pageGrid, 'same samples for the same seed after loading by file input');
  await fs.mkdir(OUT, { recursive: true });
  await page.screenshot({ path: path.join(OUT, 'loaded.png'), fullPage: true });

  await page.reload();
  await waitReady();
  await setSeed(5);
  await loadByDrop(downloaded);
  await page.waitForSelector('#loaded:not([hidden])');
  assert.deepEqual(await samplesFor(5), pageGrid, 'same samples after loading by drop');
  assert.deepEqual(errors, []);
});

test('the native CLI draws the same images from the file the browser wrote', { timeout: 120_000 }, async () => {
  const png = path.join(OUT, 'cli-from-page.png');
  cli('sample', downloaded, '--seed', '5', '--count', '36', '-o', png);
  assertSameImages(await pngPixels(png), pageGrid, 'CLI (Flex) vs page (WebGPU)');
});

test('a model the CLI trained loads in the page, draws the same images, continues training; ?model= loads it too', { timeout: 900_000 }, async () => {
  const file = path.join(OUT, 'cli-model.safetensors');
  const title = '<img src=x onerror="window.injected=1"><b>cli</b>';
  cli('train', '--builtin', 'glyphs', '--size', '16', '--width', '8', '--latent', '16', '--batch', '8',
    '--steps', '20', '--title', title, '-o', file);
  const png = path.join(OUT, 'cli-samples.png');
  cli('sample', file, '--seed', '9', '--count', '36', '-o', png);

  await page.reload();
  await waitReady();
  await setSeed(9);
  await loadByInput(file);
  await page.waitForSelector('#loaded:not([hidden])');
  assert.equal(await page.locator('#loaded-name').textContent(), title, 'metadata is shown as text');
  assert.equal(await page.locator('#loaded-name b, #loaded-name img').count(), 0, 'no HTML from the file');
  assert.equal(await page.evaluate(() => window.injected), undefined);
  assert.match(await page.locator('#loaded-shape').textContent(), /16 × 16 px, grayscale/);
  assert.equal(await page.getByLabel('Dataset', { exact: true }).inputValue(), 'glyphs', 'the built-in set of the file is chosen');
  assertSameImages(await samplesFor(9), await pngPixels(png), 'page (WebGPU) vs CLI (Flex)');

  await page.getByRole('button', { name: 'Continue training', exact: true }).click();
  await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) >= 22, null, { timeout: 600_000 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  assert.equal(await page.locator('#notice').isHidden(), true, await page.locator('#notice-text').textContent());

  const other = await browser.newPage();
  const otherErrors = watchErrors(other);
  await other.goto(`${base}/www/index.html?model=${encodeURIComponent('/target/e2e/cli-model.safetensors')}`);
  await other.waitForSelector('#loaded:not([hidden])', { timeout: 300_000 });
  assert.equal(await other.locator('#step-count').textContent(), '20');
  await other.close();
  assert.deepEqual(otherErrors, []);
  assert.deepEqual(errors, []);
});

test('bad model files are refused with a message, and the loaded model stays', { timeout: 300_000 }, async () => {
  const step = await page.locator('#step-count').textContent();
  const cases = [
    ['notes.safetensors', 'just some text, not a model', /not a valid safetensors file/],
    ['empty.safetensors', '', /not a valid safetensors file/],
  ];
  const bytes = await fs.readFile(downloaded);
  cases.push(['truncated.safetensors', bytes.subarray(0, bytes.length - 100), /not a valid safetensors file/]);
  for (const [name, content, message] of cases) {
    const file = path.join(OUT, name);
    await fs.writeFile(file, content);
    await loadByInput(file);
    await page.waitForFunction((n) => document.getElementById('notice-text').textContent.startsWith(n), name, { timeout: 60_000 });
    const text = await page.locator('#notice-text').textContent();
    assert.match(text, /cannot load this model file/, name);
    assert.match(text, message, name);
    assert.equal(await page.locator('#step-count').textContent(), step, `${name}: the model in use is kept`);
  }
  await page.getByRole('button', { name: 'Resume', exact: true }).click();
  await page.waitForFunction((s) => Number(document.getElementById('step-count').textContent) > s, Number(step), { timeout: 300_000 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  assert.deepEqual(errors, []);
});
