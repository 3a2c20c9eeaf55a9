// Your own pictures end to end: pictures made in the test (PNG, JPEG, WebP, a transparent PNG, a
// duplicate) and five bad files go in through the real file input and by drop; each bad file is
// named with its reason, the rest load; removing one and changing the preparation work; then the
// page trains on them and the model file records the dataset and its preparation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { startServer, launch, watchErrors, requireWebGpu, ROOT } from './harness.mjs';

let server, base, browser, page, errors;
const DIR = path.join(ROOT, 'target/e2e/pictures');
const TINY = 'imageSize=16&batch=8&width=8&latent=16&seed=4&qualityEvery=5&lrG=0.002&lrD=0.002';

before(async () => {
  ({ server, base } = await startServer());
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
  errors = watchErrors(page);
  await page.goto(`${base}/www/index.html?${TINY}`);
  await requireWebGpu(page);
  await page.waitForFunction(() => !document.getElementById('add-pictures').disabled, null, { timeout: 120_000 });
});

after(async () => {
  await browser?.close();
  server?.close();
});

// Pictures drawn in the page: a disc of a different colour and place on each, as PNG/JPEG/WebP.
async function makePicture(i, type, alpha = false) {
  const b64 = await page.evaluate(async ([i, type, alpha]) => {
    const c = new OffscreenCanvas(48 + 8 * (i % 3), 40);
    const g = c.getContext('2d');
    if (!alpha) { g.fillStyle = `hsl(${(i * 47) % 360} 40% 80%)`; g.fillRect(0, 0, c.width, c.height); }
    g.fillStyle = `hsl(${(i * 97) % 360} 80% 40%)`;
    g.beginPath(); g.arc(12 + (i * 7) % 24, 12 + (i * 5) % 16, 8 + (i % 4), 0, Math.PI * 2); g.fill();
    const bytes = new Uint8Array(await (await c.convertToBlob({ type, quality: 0.95 })).arrayBuffer());
    let s = ''; for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, [i, type, alpha]);
  return Buffer.from(b64, 'base64');
}

// CRC-32 as PNG chunks use it (PNG spec §5.5), to forge a header that passes its checksum.
function crc32(bytes) {
  let c = ~0;
  for (const b of bytes) { c ^= b; for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1; }
  return ~c >>> 0;
}

const BAD = [
  ['empty.png', /empty\.png: the file is empty/],
  ['notes.png', /notes\.png: not a picture/],
  ['cut.png', /cut\.png: damaged/],
  ['huge.png', /huge\.png: 100000x100000 pixels is too large/],
  ['big.png', /big\.png: the file is 30 MB/],
];

async function writeFiles() {
  await fs.rm(DIR, { recursive: true, force: true });
  await fs.mkdir(DIR, { recursive: true });
  const good = [];
  for (let i = 0; i < 12; i++) good.push([`disc-${i}.png`, await makePicture(i, 'image/png')]);
  good.push(['photo-a.jpg', await makePicture(20, 'image/jpeg')], ['photo-b.jpg', await makePicture(21, 'image/jpeg')]);
  good.push(['web.webp', await makePicture(22, 'image/webp')], ['clear.png', await makePicture(23, 'image/png', true)]);
  good.push(['copy of disc-0.png', good[0][1]]);
  const valid = good[1][1];
  const huge = Buffer.from(valid);
  huge.writeUInt32BE(100000, 16); huge.writeUInt32BE(100000, 20);
  huge.writeUInt32BE(crc32(huge.subarray(12, 29)), 29);
  const bad = [Buffer.alloc(0), Buffer.from('just some text\n'), valid.subarray(0, 100), huge, Buffer.alloc(30 << 20)];
  const all = [...good, ...BAD.map(([name], i) => [name, bad[i]])];
  for (const [name, bytes] of all) await fs.writeFile(path.join(DIR, name), bytes);
  return all.map(([name]) => path.join(DIR, name));
}

const status = () => page.locator('#upload-text').textContent();
async function waitReady(pattern) {
  await page.waitForFunction((p) => new RegExp(p).test(document.getElementById('upload-text').textContent), pattern.source, { timeout: 120_000 });
  return status();
}
const previewSpread = () => page.evaluate(() => {
  const c = document.getElementById('preview');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lo = 255, hi = 0;
  for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
  return hi - lo;
});

test('pictures load through the file input; every bad file is named with its reason', { timeout: 300_000 }, async () => {
  const files = await writeFiles();
  await page.locator('#picture-files').setInputFiles(files);
  const text = await waitReady(/pictures ready/);
  assert.equal(text, '16 pictures ready, 5 files skipped, 1 duplicate dropped');
  const messages = await page.locator('#picture-messages li').allTextContents();
  for (const [name, reason] of BAD) assert.ok(messages.some((m) => reason.test(m)), `${name}: ${messages.join(' | ')}`);
  assert.ok(messages.some((m) => /copy of disc-0\.png: a duplicate/.test(m)), messages.join(' | '));
  assert.equal(await page.getByLabel('Dataset', { exact: true }).inputValue(), 'upload');
  assert.match(await page.locator('#preview-caption').textContent(), /Your pictures: 16/);
  assert.ok(await previewSpread() > 50, 'the preview shows the pictures');
  await page.screenshot({ path: path.join(ROOT, 'target/e2e/upload.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('dropping pictures adds them; clicking one removes it; a new preparation keeps them', { timeout: 300_000 }, async () => {
  const extra = [await makePicture(30, 'image/png'), await makePicture(31, 'image/png')];
  const dt = await page.evaluateHandle((list) => {
    const d = new DataTransfer();
    list.forEach((b64, i) => d.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], `dropped-${i}.png`, { type: 'image/png' })));
    return d;
  }, extra.map((b) => b.toString('base64')));
  await page.dispatchEvent('body', 'drop', { dataTransfer: dt });
  assert.equal(await waitReady(/^18 pictures ready/), '18 pictures ready');
  await page.locator('#preview').click({ position: { x: 5, y: 5 } });
  await page.waitForFunction(() => /Your pictures: 17/.test(document.getElementById('preview-caption').textContent), null, { timeout: 60_000 });
  await page.getByLabel('Shape', { exact: true }).selectOption('pad');
  assert.match(await waitReady(/^17 pictures ready/), /^17 pictures ready/);
  assert.deepEqual(errors, []);
});

test('the page trains on your pictures, the SWD curve falls, and the model file says so', { timeout: 900_000 }, async () => {
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await page.waitForFunction(() => window.ganDebug.quality().length >= 6, null, { timeout: 900_000 });
  const curve = await page.evaluate(() => window.ganDebug.quality());
  console.log('SWD x1e3 by step:', curve.map(([s, v]) => `${s}: ${v.toFixed(1)}`).join(', '));
  assert.equal(curve[0][0], 0, 'scored before training');
  assert.ok(curve[curve.length - 1][1] < 0.85 * curve[0][1], `SWD falls: ${JSON.stringify(curve)}`);
  assert.match(await page.locator('#copies').textContent(), /^\d+ of 64$/);
  // The nearest pairs are shown side by side: 4 rows of 2 pictures of 16 px with 1 px gaps.
  assert.equal(await page.locator('#pairs-box').isVisible(), true);
  assert.deepEqual(await page.evaluate(() => [document.getElementById('pairs').width, document.getElementById('pairs').height]), [2 * 17 + 1, 4 * 17 + 1]);
  assert.match(await page.locator('#pairs-caption').textContent(), /closest to a training picture .* apart/);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  assert.equal(await page.locator('#notice').isHidden(), true, await page.locator('#notice-text').textContent());
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    page.getByRole('button', { name: 'Download model', exact: true }).click(),
  ]);
  const bytes = await fs.readFile(await download.path());
  const meta = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')).__metadata__;
  assert.deepEqual(JSON.parse(meta.dataset), { source: 'your pictures', count: 17, size: 16, channels: 3 });
  const prep = JSON.parse(meta.preprocessing);
  assert.equal(prep.fit, 'pad');
  assert.deepEqual(prep.background, [255, 255, 255]);
  await page.screenshot({ path: path.join(ROOT, 'target/e2e/upload-trained.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

// A .zip of `entries` ([name, bytes]), Deflate-compressed (APPNOTE.TXT 4.3); names ending in "/"
// are folders. Written here so the page's reader (the Rust zip crate) is tested against bytes
// it did not write.
function zipOf(entries) {
  const parts = [], central = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name), packed = zlib.deflateRawSync(data), crc = zlib.crc32(data);
    const fields = (size, extra) => {
      const b = Buffer.alloc(size);
      for (const [at, bytes, v] of extra) (bytes === 2 ? b.writeUInt16LE(v, at) : b.writeUInt32LE(v, at));
      return b;
    };
    const shared = (o) => [[o, 2, 20], [o + 4, 2, 8], [o + 10, 4, crc], [o + 14, 4, packed.length], [o + 18, 4, data.length], [o + 22, 2, n.length]];
    parts.push(fields(30, [[0, 4, 0x04034b50], ...shared(4)]), n, packed);
    central.push(fields(46, [[0, 4, 0x02014b50], [4, 2, 20], ...shared(6), [42, 4, offset]]), n);
    offset += 30 + n.length + packed.length;
  }
  const dir = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, dir, end]);
}

test('folders load through the folder input and by drop, and .zip archives through the file input; zip bombs are named and skipped; a restart keeps the pictures', { timeout: 600_000 }, async () => {
  const fresh = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
  const freshErrors = watchErrors(fresh);
  await fresh.goto(`${base}/www/index.html?${TINY}`);
  await fresh.waitForFunction(() => !document.getElementById('add-pictures').disabled, null, { timeout: 120_000 });
  const ready = async (pattern) => {
    await fresh.waitForFunction((p) => new RegExp(p).test(document.getElementById('upload-text').textContent), pattern.source, { timeout: 120_000 });
    return fresh.locator('#upload-text').textContent();
  };
  // A dropped folder is walked through the FileSystemEntry API, which a test cannot put in a
  // real drop: here it is given entries that behave as Chromium's do (readEntries returns
  // batches, then an empty one), with a nested folder.
  const walked = await fresh.evaluate(async () => {
    const file = (name) => ({ isFile: true, file: (ok) => ok(new File(['x'], name)) });
    const dir = (...batches) => ({
      isDirectory: true,
      createReader: () => ({ readEntries: (ok) => setTimeout(() => ok(batches.shift() || [])) }),
    });
    const tree = dir([file('a.png'), dir([file('b.png')], [file('c.png')])], [file('d.png')]);
    const files = await window.ganDebug.droppedFiles({ items: [{ webkitGetAsEntry: () => tree }, { webkitGetAsEntry: () => file('e.png') }] });
    return files.map((f) => f.name);
  });
  assert.deepEqual(walked, ['a.png', 'b.png', 'c.png', 'd.png', 'e.png']);
  // The folder the first test wrote, through the real folder input (webkitdirectory).
  await fresh.locator('#picture-folder').setInputFiles(DIR);
  assert.equal(await ready(/pictures ready/), '16 pictures ready, 5 files skipped, 1 duplicate dropped');
  await fresh.getByRole('button', { name: 'Remove all', exact: true }).click();
  await fresh.waitForFunction(() => /none yet/.test(document.getElementById('preview-caption').textContent));

  const pictures = [];
  for (let i = 40; i < 43; i++) pictures.push([`cats/cat-${i}.png`, await makePicture(i, 'image/png')]);
  const archive = zipOf([
    ['cats/', Buffer.alloc(0)], ...pictures,
    ['__MACOSX/cats/._cat-40.png', Buffer.from('resource fork')],
    ['notes.png', Buffer.from('just some text')],
    ['bomb.png', Buffer.alloc(60 << 20)], // 60 MB of zeros in ~60 KB
    ['inner.zip', zipOf([['x.png', pictures[0][1]]])],
  ]);
  assert.ok(archive.length < 200_000, `the bomb is small packed: ${archive.length} bytes`);
  await fs.writeFile(path.join(DIR, '..', 'set.zip'), archive);
  await fs.writeFile(path.join(DIR, '..', 'broken.zip'), 'not an archive');
  await fresh.locator('#picture-files').setInputFiles([path.join(DIR, '..', 'set.zip'), path.join(DIR, '..', 'broken.zip')]);
  assert.equal(await ready(/pictures ready/), '3 pictures ready, 4 files skipped');
  const messages = await fresh.locator('#picture-messages li').allTextContents();
  for (const reason of [/set\.zip\/bomb\.png: it unpacks to 60 MB/, /set\.zip\/inner\.zip: an archive inside an archive/,
    /set\.zip\/notes\.png: not a picture/, /broken\.zip: not a readable zip archive/]) {
    assert.ok(messages.some((m) => reason.test(m)), `${reason}: ${messages.join(' | ')}`);
  }
  assert.ok(!messages.some((m) => /MACOSX|cats\/$/.test(m)), `folders and macOS metadata are silent: ${messages.join(' | ')}`);
  // A new preparation reads the three pictures from the archive again.
  await fresh.getByLabel('Colour', { exact: true }).selectOption('1');
  assert.match(await ready(/^3 pictures ready/), /^3 pictures ready/);
  assert.match(await fresh.locator('#recipe-note').textContent(), /Automatic for 3 pictures: Tiny set/);
  // A crash loses no pictures: the new worker prepares the same ones again.
  await fresh.evaluate(() => window.ganDebug.crash());
  await fresh.waitForFunction(() => /crash requested by the self-test.*restarted; your pictures and settings are kept/.test(document.getElementById('notice-text').textContent));
  assert.match(await ready(/^3 pictures ready/), /^3 pictures ready/);
  assert.equal((await fresh.evaluate(() => window.ganDebug.upload())).count, 3, 'counted by the new worker');
  assert.match(await fresh.locator('#preview-caption').textContent(), /Your pictures: 3/);
  const unexpected = freshErrors.filter((e) => !/crash requested by the self-test|RuntimeError: unreachable/.test(e));
  assert.deepEqual(unexpected, []);
  await fresh.close();
});
