// The training worker: owns the one wasm instance (Burn on WebGPU, or Flex on the CPU) and talks
// to the page with small typed messages. Page -> worker: init, preview, recipe, start, pause,
// resume, reset, step, settings, draw, load, save, crash (self-test). Worker -> page: ready, recipe, preview,
// model, loaded, state, progress, samples, model-file, error, fatal.
import init, * as gan from './pkg/gan_playground.js';

let wasm = null;         // the wasm exports (its memory size is reported with the pictures)
let session = null;      // gan.Session while a model is being trained
let loaded = null;       // gan.Model: a loaded model file, until it is trained on (or reset)
let settings = {};       // the settings the next session is built from
let draw = { seed: 1, count: 36, truncation: undefined }; // which samples the grid shows
let upload = null;       // gan.Upload: the user's pictures, prepared
let uploadFiles = [];    // the Files behind it (kept to prepare them again when settings change)
let uploadCancel = false;
let uploadRun = Promise.resolve(); // the picture load in progress (one at a time)
let running = false;     // a training loop is active
let inflight = null;     // the one tick in flight (a Promise), shared by the loop, Step, Pause and Reset
let dead = false;        // the wasm panicked: refuse everything, the page offers a restart
let lastStep = 0;        // steps done, as of the last tick
let stepsPerTick = 1;    // adapted so one tick (k steps + one readback) takes about TICK_MS
const TICK_MS = 250;
let qualityEvery = 50;   // steps between quality scores (also at least every QUALITY_MS)
const QUALITY_MS = 30_000;
let lastQuality = { step: -1, at: 0, ms: 0 }; // keeps the sample grid lively without reading back every step

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

function fatal(message) {
  if (dead) return;
  dead = true;
  running = false;
  post({ type: 'fatal', message: String(message) });
}
// Called by the Rust panic hook before the instance traps.
self.__ganPanic = (message) => fatal(`The training core crashed: ${message}`);
self.addEventListener('error', (e) => { e.preventDefault(); fatal(e.message || 'worker error'); });
self.addEventListener('unhandledrejection', (e) => fatal((e.reason && e.reason.message) || e.reason));

function describeAdapter(adapter) {
  const i = adapter.info || {};
  const parts = [i.vendor, i.architecture, i.description].filter(Boolean);
  return parts.length ? parts.join(' ') : 'unnamed adapter';
}

async function boot(preference) {
  wasm = await init();
  let notice = null;
  let adapter = null;
  if (preference !== 'cpu') {
    if (!self.navigator.gpu) {
      notice = 'This browser has no WebGPU: training runs on the CPU, which is much slower. Smaller settings are used.';
    } else {
      // The same preference burn's wgpu runtime uses, so the adapter named is the one that trains.
      const a = await self.navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!a) {
        notice = 'WebGPU is present but no GPU adapter was found: training runs on the CPU. Smaller settings are used.';
      } else {
        try {
          await gan.init_backend('webgpu');
          adapter = describeAdapter(a);
        } catch (e) {
          notice = `WebGPU failed to start (${e.message}): training runs on the CPU.`;
        }
      }
    }
  } else {
    notice = 'CPU backend chosen: training runs on the CPU (Flex), slower than WebGPU.';
  }
  const backend = adapter ? 'webgpu' : await gan.init_backend('cpu');
  post({ type: 'ready', backend, adapter, notice });
}

function sendPicture(type, picture, extra) {
  const bytes = picture.rgba; // a fresh copy out of wasm memory, so it can be transferred
  const rgba = new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.length);
  post({ type, width: picture.width, height: picture.height, rgba, ...extra }, [rgba.buffer]);
  picture.free();
}

async function runTick() {
  const k = stepsPerTick;
  const t0 = performance.now();
  const result = await session.run(k);
  const ms = performance.now() - t0;
  const progress = {
    type: 'progress', step: Number(result.step), dLoss: result.d_loss, gLoss: result.g_loss,
    dReal: result.d_real, dFake: result.d_fake, stepsPerTick: k, tickMs: ms, stepsPerSec: (k * 1000) / ms,
  };
  lastStep = progress.step;
  sendPicture('samples', result, { step: progress.step });
  post(progress);
  // Aim for TICK_MS per tick; at most x2 per adjustment, so a slow first (compiling) step
  // doesn't swing it.
  const ideal = Math.round((k * TICK_MS) / Math.max(ms, 1));
  stepsPerTick = Math.max(1, Math.min(50, Math.min(ideal, k * 2)));
}

// Starts a tick, or joins the one in flight: ticks never overlap.
function tick() {
  if (!inflight) inflight = runTick().finally(() => { inflight = null; });
  return inflight;
}

// Waits until no tick is in flight (its outcome is reported by whoever started it).
async function settle() {
  while (inflight) await inflight.catch(() => {});
}

// Scores the generator (SWD and the memorisation check) in the tick slot, and reports them.
async function measureQuality() {
  const t0 = performance.now();
  const q = await session.quality();
  lastQuality = { step: q.step, at: performance.now(), ms: performance.now() - t0 };
  post({ type: 'quality', ...q });
  const pairs = session.nearest_pairs();
  if (pairs) sendPicture('pairs', pairs, { step: q.step });
}

function qualityDue() {
  if (lastQuality.step === lastStep) return false;
  // Scoring a large set takes seconds: keep it under a fifth of the time, whatever the cadence.
  if (performance.now() - lastQuality.at < 4 * (lastQuality.ms || 0)) return false;
  return lastQuality.step < 0 || lastStep - lastQuality.step >= qualityEvery || performance.now() - lastQuality.at > QUALITY_MS;
}

async function loop() {
  while (running && !dead && session) {
    try {
      if (qualityDue()) await exclusive(measureQuality);
      await tick();
    } catch (e) {
      if (dead) return;
      running = false;
      post({ type: 'error', message: e.message || String(e) });
      post({ type: 'state', running: false });
      return;
    }
    await new Promise((r) => setTimeout(r, 0)); // let pause/reset messages in
  }
}

function ensureSession() {
  if (session) return;
  const mine = settings.dataset === 'upload';
  if (mine && !upload) throw new Error('Add pictures first (Add pictures… or drop them on the page), or choose a built-in set.');
  if (loaded) {
    // Continue training the loaded file; on failure the loaded model stays as it was.
    const info = loaded.info();
    const s = { ...settings, imageSize: info.imageSize };
    session = mine ? upload.resume(loaded, s) : gan.Session.resume(loaded, s);
    loaded.free();
    loaded = null;
  } else {
    session = mine ? upload.session(settings) : new gan.Session(settings);
  }
  session.set_samples(BigInt(draw.seed), draw.count, draw.truncation);
  stepsPerTick = 1;
  lastQuality = { step: -1, at: 0, ms: 0 };
  post({ type: 'model', generatorParams: session.generator_params, discriminatorParams: session.discriminator_params });
}

// Draws the grid now (without training), from the session or the loaded model.
async function showSamples() {
  const picture = session
    ? await session.sample()
    : await loaded.sample(BigInt(draw.seed), draw.count, draw.truncation);
  sendPicture('samples', picture, { step: lastStep, fresh: true });
}

// Runs `work` in the one tick slot: waits for the tick in flight, then holds the slot so the
// training loop waits for it.
async function exclusive(work) {
  await settle();
  inflight = work().finally(() => { inflight = null; });
  return inflight;
}

// Pictures: check each file's header, let the browser decode it, prepare it in Rust. A bad file
// is reported by name and skipped; the rest load. One load at a time; Cancel stops it.
const HEADER_BYTES = 64 * 1024;

async function decode(name, blob) {
  const head = new Uint8Array(await blob.slice(0, HEADER_BYTES).arrayBuffer());
  gan.Upload.check(name, blob.size, head); // throws with the reason, before decoding
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch {
    throw new Error(`skipped ${name}: damaged or unsupported picture (the browser could not decode it)`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const g = canvas.getContext('2d', { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0);
  bitmap.close();
  return g.getImageData(0, 0, canvas.width, canvas.height);
}

const isZip = (file) => /\.zip$/i.test(file.name);

// The picture files behind `items` (Files, .zip Files, or {file, entry} kept from an archive),
// one at a time: {name, blob, source} (source is kept to prepare the picture again), {name,
// error}, or {skip} for an archive's folders and macOS metadata. An archive is read into the
// core once and its entries inflated one by one; `grow(n)` is told it holds n more files.
async function* pictureFiles(items, grow) {
  let open = null; // { file, archive }
  try {
    for (const item of items) {
      const file = item.file || item;
      if (item.entry === undefined && !isZip(file)) { yield { name: file.name, blob: file, source: file }; continue; }
      if (!open || open.file !== file) {
        if (open) { open.archive.free(); open = null; }
        try {
          gan.Archive.check(file.name, file.size);
          open = { file, archive: new gan.Archive(file.name, new Uint8Array(await file.arrayBuffer())) };
        } catch (e) { yield { name: file.name, error: e.message || String(e) }; continue; }
      }
      const whole = item.entry === undefined;
      if (whole) grow(open.archive.count - 1);
      for (const entry of whole ? [...Array(open.archive.count).keys()] : [item.entry]) {
        let e;
        try {
          e = open.archive.entry(entry);
        } catch (err) { yield { name: file.name, error: err.message || String(err) }; continue; }
        if (!e) { yield { skip: true }; continue; }
        const picture = { name: e.name, blob: new Blob([e.bytes]), source: { file, entry } };
        e.free();
        yield picture;
      }
    }
  } finally {
    if (open) open.archive.free();
  }
}

// The page keeps the list of kept pictures (Files and archive entries, cheap to clone) so a new
// worker, after a crash or a backend switch, can prepare the same pictures again.
function sendKept() { post({ type: 'pictures-kept', items: uploadFiles.slice() }); }

function sendUploadPreview(extra) {
  sendKept();
  if (!upload || upload.count === 0) { post({ type: 'pictures-empty', ...extra }); return; }
  sendPicture('pictures-preview', upload.preview(64, 8), { count: upload.count, wasmBytes: wasm.memory.buffer.byteLength, ...extra });
}

async function addPictures(files, prep) {
  if (!upload || prep) {
    const fresh = new gan.Upload(prep);
    if (upload) upload.free();
    upload = fresh;
  }
  uploadCancel = false;
  let total = files.length;
  let done = 0, added = 0, duplicates = 0, last = 0;
  for await (const f of pictureFiles(files, (n) => { total += n; })) {
    if (uploadCancel) break;
    if (f.skip) { total--; continue; } // not a file anyone chose: no count, no message
    if (f.error) post({ type: 'picture-message', name: f.name, message: f.error });
    else {
      try {
        const image = await decode(f.name, f.blob);
        if (upload.add(f.name, image.width, image.height, new Uint8Array(image.data.buffer))) {
          added++;
          uploadFiles.push(f.source); // index i here is picture i in the set
        } else { duplicates++; post({ type: 'picture-message', name: f.name, message: `${f.name}: a duplicate of a picture already added; dropped` }); }
      } catch (e) {
        post({ type: 'picture-message', name: f.name, message: e.message || String(e) });
      }
    }
    done++;
    if (performance.now() - last > 200 || done === total) {
      last = performance.now();
      post({ type: 'pictures-progress', done, total, count: upload.count });
    }
  }
  sendUploadPreview({ done, total, added, duplicates, cancelled: uploadCancel });
}

const handlers = {
  async init(msg) {
    if (msg.qualityEvery > 0) qualityEvery = msg.qualityEvery;
    try { await boot(msg.backend); } catch (e) { fatal(`The training core failed to start: ${e.message || e}`); }
  },
  async preview(msg) { sendPicture('preview', gan.dataset_preview(msg.dataset, msg.imageSize, 32), { dataset: msg.dataset }); },
  async recipe(msg) { post({ type: 'recipe', ...gan.recipe(msg.name, msg.count) }); },
  async settings(msg) { settings = { ...settings, ...msg.settings }; },
  async start(msg) {
    if (msg.settings) settings = msg.settings;
    ensureSession();
    if (!running) { running = true; post({ type: 'state', running: true }); loop(); }
  },
  async resume() { return handlers.start({}); },
  async pause() {
    // Report "paused" only once the tick in flight has landed, so the counter really stops.
    running = false;
    await settle();
    post({ type: 'state', running: false });
  },
  async step(msg) {
    if (msg.settings && !session) settings = msg.settings;
    ensureSession();
    await tick();
  },
  async save(msg) {
    if (!session && !loaded) throw new Error('There is no model to save yet: train first.');
    await exclusive(async () => {
      const bytes = session ? await session.save_model(true, msg.title || '') : await loaded.save_model(msg.title || '');
      post({ type: 'model-file', bytes, step: lastStep }, [bytes.buffer]);
    });
  },
  async draw(msg) {
    draw = { seed: msg.seed, count: draw.count, truncation: msg.truncation ?? undefined };
    if (session) session.set_samples(BigInt(draw.seed), draw.count, draw.truncation);
    // While training, the next tick shows the new samples; otherwise draw them now.
    if ((session && !running) || loaded) await exclusive(showSamples);
  },
  async load(msg) {
    // Check the file first: a bad one leaves the current model running.
    let candidate;
    try {
      candidate = gan.Model.load(new Uint8Array(msg.bytes));
    } catch (e) {
      throw new Error(`${msg.name}: ${e.message || e}`);
    }
    running = false;
    await settle();
    if (session) { session.free(); session = null; }
    if (loaded) loaded.free();
    loaded = candidate;
    const info = loaded.info();
    lastStep = Number(info.step);
    post({ type: 'state', running: false, reset: true });
    post({ type: 'loaded', name: msg.name, info: { ...info, step: Number(info.step) } });
    await exclusive(showSamples);
  },
  async crash() { gan.simulate_crash(); },
  async pictures(msg) {
    uploadRun = uploadRun.then(() => addPictures(msg.files, upload ? null : msg.prep));
    await uploadRun;
  },
  async 'pictures-prep'(msg) {
    // New preparation settings: prepare every kept file again.
    uploadCancel = true;
    await uploadRun;
    const files = uploadFiles;
    uploadFiles = [];
    if (!files.length) { if (upload) upload.free(); upload = null; return; }
    uploadRun = addPictures(files, msg.prep);
    await uploadRun;
  },
  async 'pictures-cancel'() { uploadCancel = true; },
  async 'pictures-show'() { await uploadRun; sendUploadPreview({}); },
  async 'pictures-remove'(msg) {
    await uploadRun;
    if (!upload) return;
    upload.remove(msg.index);
    uploadFiles.splice(msg.index, 1);
    sendUploadPreview({ removed: true });
  },
  async 'pictures-clear'() {
    uploadCancel = true;
    await uploadRun;
    if (upload) upload.free();
    upload = null;
    uploadFiles = [];
    sendUploadPreview({ cleared: true });
  },
  async reset() {
    running = false;
    await settle();
    if (session) { session.free(); session = null; }
    if (loaded) { loaded.free(); loaded = null; }
    lastStep = 0;
    post({ type: 'state', running: false, reset: true });
  },
};

self.onmessage = async (event) => {
  const msg = event.data;
  if (dead) { post({ type: 'error', message: 'The training core crashed earlier; restart the worker.' }); return; }
  const handler = handlers[msg.type];
  if (!handler) { post({ type: 'error', message: `unknown message ${msg.type}` }); return; }
  try {
    await handler(msg);
  } catch (e) {
    if (!dead) post({ type: 'error', message: e.message || String(e) });
  }
};
