// The training worker: owns the one wasm instance (Burn on WebGPU, or Flex on the CPU) and talks
// to the page with small typed messages. Page -> worker: init, preview, recipe, start, pause,
// resume, reset, step, settings, draw, load, save, hidden, restore, crash and debug-* (self-tests).
// Worker -> page: ready, recipe, preview, model, loaded, state, progress, samples, model-file,
// autosave-found, autosaved, autosave-failed, restored, rolled-back, error, fatal.
import init, * as gan from './pkg/gan_playground.js';
import { openStore } from './store.js';

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

// Autosave (store.js): every AUTOSAVE.steps steps or AUTOSAVE.ms, when the page is hidden, on
// Pause, and before replacing or dropping the model. The last checkpoint also stays in memory,
// for the divergence guard's rollback even when storage fails.
let store = null;
const AUTOSAVE = { steps: 500, ms: 30_000 };
// saved: the last checkpoint taken (step, bytes: kept in memory for rollbacks) and the last one
// stored (storedStep); runId names the model being trained, so a restart resumes that model's
// autosave and never another's.
let saved = { step: -1, storedStep: -1, at: 0, picturesId: null, bytes: null, info: null, running: false };
let runId = null;
let divergedAt = -1;     // step of the last divergence; rollbacks count until a checkpoint passes it
let lastGrid = null;     // the last sample grid (a copy), kept with each checkpoint for the resume prompt
let rollbacks = 0;       // rollbacks since training last got past its checkpoint
let gpuDevice = null;    // the WebGPU device burn uses, seen through requestDevice below
let curves = { losses: [], quality: [] }; // [step, dLoss, gLoss] and [step, swd], saved with checkpoints

function fatal(message, kind) {
  if (dead) return;
  dead = true;
  const wasRunning = running || saved.running;
  running = false;
  post({ type: 'fatal', message: String(message), kind: kind || 'crash', running: wasRunning, step: lastStep, runId });
}
// Called by the Rust panic hook before the instance traps.
self.__ganPanic = (message) => fatal(`The training core crashed: ${message}`, 'panic');
// A lost device (driver reset, GPU process crash, out of memory) poisons burn's device: report
// it as fatal, so the page starts a new worker that resumes from the last autosave.
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevice = device;
    device.lost.then((info) => fatal(`The GPU was reset (${info.message || info.reason}).`, 'gpu-lost'));
    return device;
  };
}
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
          const l = a.limits;
          await gan.init_backend('webgpu', Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize));
          adapter = describeAdapter(a);
        } catch (e) {
          notice = `WebGPU failed to start (${e.message}): training runs on the CPU.`;
        }
      }
    }
  } else {
    notice = 'CPU backend chosen: training runs on the CPU (Flex), slower than WebGPU.';
  }
  const backend = adapter ? 'webgpu' : await gan.init_backend('cpu', undefined);
  post({ type: 'ready', backend, adapter, notice });
}

function sendPicture(type, picture, extra) {
  const bytes = picture.rgba; // a fresh copy out of wasm memory, so it can be transferred
  const rgba = new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.length);
  if (type === 'samples') lastGrid = { width: picture.width, height: picture.height, rgba: rgba.slice() };
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
  curves.losses.push([progress.step, progress.dLoss, progress.gLoss]);
  if (curves.losses.length > 2000) curves.losses = curves.losses.filter((_, i) => i % 2 === 0);
  sendPicture('samples', result, { step: progress.step });
  post(progress);
  // Aim for TICK_MS per tick; at most x2 per adjustment, so a slow first (compiling) step
  // doesn't swing it.
  const ideal = Math.round((k * TICK_MS) / Math.max(ms, 1));
  stepsPerTick = Math.max(1, Math.min(50, Math.min(ideal, k * 2)));
}

// Starts a tick, or joins the one in flight: ticks never overlap.
function tick() {
  if (!inflight) {
    const p = runTick().finally(() => { if (inflight === p) inflight = null; });
    inflight = p;
  }
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
  curves.quality.push([q.step, q.swd]);
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
      if (qualityDue()) {
        // The score before the first step (the curve's baseline) takes seconds on a slow adapter
        // (25 s for the reference DCGAN on SwiftShader): show the untrained generator's samples
        // first, so the canvas is not blank meanwhile.
        if (lastStep === 0) await exclusive(showSamples);
        await exclusive(measureQuality);
      }
      await tick();
      if (autosaveDue()) await exclusive(() => autosave('interval'));
    } catch (e) {
      if (dead) return;
      if (e.name === 'DivergenceError' && rollbacks < 3) {
        try { await exclusive(() => rollback(e)); continue; } catch (r) { e = r; }
      }
      running = false;
      post({ type: 'error', message: (e && e.message) || String(e) });
      post({ type: 'state', running: false });
      return;
    }
    await new Promise((r) => setTimeout(r, 0)); // let pause/reset messages in
  }
}

// ---- Autosave, resume, rollback ----
function autosaveDue() {
  // Also without storage: the in-memory checkpoint is the divergence guard's rollback point.
  return session && lastStep > saved.step &&
    (lastStep - saved.step >= AUTOSAVE.steps || performance.now() - saved.at >= AUTOSAVE.ms);
}

function pageState() { return JSON.stringify({ settings, draw: { seed: draw.seed, truncation: draw.truncation } }); }

// Writes a checkpoint of the session (call in the tick slot). A storage failure (quota, private
// mode) is reported and training goes on; the checkpoint still serves rollbacks from memory.
async function autosave(reason) {
  if (!session || (lastStep === saved.step && (!store || lastStep === saved.storedStep))) return;
  const t0 = performance.now();
  if (lastStep !== saved.step) {
    const bytes = await session.checkpoint(pageState());
    const info = gan.checkpoint_info(bytes);
    saved = { ...saved, step: info.step, at: performance.now(), bytes, info, running };
    if (saved.step > divergedAt) rollbacks = 0; // training got past the last divergence
  }
  if (!store) return;
  const { bytes, info } = saved;
  const mine = settings.dataset === 'upload';
  const picturesId = mine ? session.pictures_id() : null;
  try {
    const pictures = mine && picturesId !== saved.picturesId && !(await store.hasPictures(picturesId))
      ? { id: picturesId, bytes: session.pictures_file() } : null;
    await store.save({ bytes, step: info.step, digest: info.digest, savedAt: Date.now(), grid: lastGrid, picturesId, curves, runId }, pictures);
    saved.picturesId = picturesId;
    saved.storedStep = info.step;
    let usage = null, quota = null;
    try { ({ usage, quota } = await navigator.storage.estimate()); } catch { /* not reported */ }
    post({ type: 'autosaved', step: info.step, digest: info.digest, bytes: bytes.length, ms: performance.now() - t0, reason, usage, quota });
  } catch (e) {
    const full = e && e.name === 'QuotaExceededError';
    post({ type: 'autosave-failed', step: info.step, quota: full,
      message: full ? 'Autosave failed: the browser has no storage left for this page (quota exceeded). Training goes on; download the model to keep it.'
        : `Autosave failed (${(e && e.message) || e}). Training goes on; download the model to keep it.` });
  }
}

// Makes a restored session the current one, as if it had trained here.
function install(restored, info, state, run) {
  if (session) session.free();
  if (loaded) { loaded.free(); loaded = null; }
  session = restored;
  lastStep = info.step;
  stepsPerTick = 1;
  lastQuality = { step: -1, at: 0, ms: 0 };
  if (state) {
    settings = state.settings || settings;
    if (state.draw) draw = { ...draw, ...state.draw, truncation: state.draw.truncation ?? undefined };
  }
  session.set_samples(BigInt(draw.seed), draw.count, draw.truncation);
  if (run) runId = run;
  post({ type: 'model', generatorParams: session.generator_params, discriminatorParams: session.discriminator_params, memory: session.memory(), runId });
}

// Builds a session from a stored checkpoint (and its pictures), learning rates times lrScale.
function sessionFrom(bytes, pictures, info, lrScale) {
  if (info.builtin) return { session: gan.Session.restore(bytes, lrScale) };
  if (!pictures) throw new Error('its pictures are missing from storage');
  const up = gan.Upload.from_pictures_file(pictures);
  try { return { session: up.restore(bytes, lrScale), upload: up }; } catch (e) { up.free(); throw e; }
}

// The stored checkpoints, newest first (of model `run` when given), each with its info; one that
// cannot be read is skipped and named in `problems`.
async function* readableCheckpoints(run, problems) {
  for (const c of store ? await store.candidates() : []) {
    if (run && c.checkpoint.runId !== run) continue;
    let info;
    try { info = gan.checkpoint_info(c.checkpoint.bytes); } catch (e) {
      problems.push(`the autosave in slot ${c.slot} is damaged (${(e && e.message) || e})`);
      continue;
    }
    yield { c, info };
  }
}

// The newest readable checkpoint (for the resume prompt), or null when there is none.
async function newestValid(run) {
  const problems = [];
  for await (const { c, info } of readableCheckpoints(run, problems)) {
    return { info, record: c.checkpoint, pictures: c.pictures, problems };
  }
  return problems.length ? { info: null, problems } : null;
}

// Resumes the newest checkpoint that builds (of model `run` when given), falling back to the
// older slot. `keep` are the page's kept picture files. Returns {info, digest, ...} or
// {problems} when none could be resumed.
async function restoreLatest(keep, run) {
  const problems = [];
  for await (const { c, info } of readableCheckpoints(run, problems)) {
    let built;
    try { built = sessionFrom(c.checkpoint.bytes, c.pictures, info, 1); } catch (e) {
      problems.push(`the autosave in slot ${c.slot} could not be resumed (${(e && e.message) || e})`);
      continue;
    }
    const record = c.checkpoint;
    if (built.upload) {
      if (upload) upload.free();
      upload = built.upload;
      uploadFiles = keep && keep.length === upload.count ? keep : [];
      sendKept();
    }
    install(built.session, info, info.pageSettings ? JSON.parse(info.pageSettings) : null, record.runId || newRunId());
    saved = { step: info.step, storedStep: info.step, at: performance.now(), picturesId: record.picturesId, bytes: record.bytes, info, running: false };
    rollbacks = 0;
    if (record.grid) lastGrid = record.grid;
    curves = record.curves || { losses: [], quality: [] };
    const digest = await session.digest();
    return { info, digest, problems, savedAt: record.savedAt };
  }
  return { problems };
}

const newRunId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

// The divergence guard: back to the last checkpoint with both learning rates halved.
async function rollback(error) {
  rollbacks++;
  const from = lastStep;
  divergedAt = Math.max(divergedAt, lastStep);
  let info;
  if (saved.bytes) {
    // Halved once more on each rollback in a row: the checkpoint holds the rates it had.
    const scale = 0.5 ** rollbacks;
    info = saved.info;
    const built = info.builtin ? gan.Session.restore(saved.bytes, scale) : upload.restore(saved.bytes, scale);
    install(built, info, null, null);
  } else {
    // Diverged before the first checkpoint: start again with halved learning rates.
    const [g, d] = session.learning_rates();
    settings = { ...settings, lrG: g / 2, lrD: d / 2 };
    session.free(); session = null;
    const streak = [rollbacks, divergedAt];
    ensureSession();
    [rollbacks, divergedAt] = streak; // the same model started again: the streak goes on
    lastStep = 0;
    info = { step: 0 };
  }
  const [lrG, lrD] = session.learning_rates();
  settings = { ...settings, lrG, lrD };
  curves = { losses: curves.losses.filter((p) => p[0] <= info.step), quality: curves.quality.filter((p) => p[0] <= info.step) };
  // The next checkpoint (after the step advances) keeps the lowered rates.
  post({ type: 'rolled-back', from, to: info.step, lrG, lrD,
    message: `Training diverged (${error.message.replace(/; try a lower learning rate$/, '')}). Rolled back to step ${info.step} and halved the learning rates (G ${lrG.toExponential(1)}, D ${lrD.toExponential(1)}).` });
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
  // A new model: the first autosave comes one interval from now; no rollback point yet.
  curves = { losses: [], quality: [] };
  saved = { step: -1, storedStep: -1, at: performance.now(), picturesId: saved.picturesId, bytes: null, info: null, running: false };
  rollbacks = 0;
  divergedAt = -1;
  runId = newRunId();
  post({ type: 'model', generatorParams: session.generator_params, discriminatorParams: session.discriminator_params, memory: session.memory(), runId });
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
  // Checked and taken with no await in between: two waiters never run together.
  while (inflight) await inflight.catch(() => {});
  const p = work().finally(() => { if (inflight === p) inflight = null; });
  inflight = p;
  return p;
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
    if (msg.autosaveMs > 0) AUTOSAVE.ms = msg.autosaveMs;
    if (msg.autosaveSteps > 0) AUTOSAVE.steps = msg.autosaveSteps;
    try { await boot(msg.backend); } catch (e) { fatal(`The training core failed to start: ${e.message || e}`, 'start'); return; }
    let storeProblem = null;
    try { store = await openStore(); } catch (e) { storeProblem = `Autosave is off: ${e.message || e}.`; }
    if (storeProblem) post({ type: 'autosave-failed', message: storeProblem });
    if (msg.resume) {
      // A restart after a crash: go on from the last autosave, without asking.
      let result;
      try { result = await exclusive(() => restoreLatest(msg.keep, msg.expectRun)); } catch (e) { result = { problems: [e.message || String(e)] }; }
      if (result.info) {
        post({ type: 'restored', auto: true, step: result.info.step, digest: result.digest, savedDigest: result.info.digest,
          savedAt: result.savedAt, settings, draw, curves, problems: result.problems });
        await exclusive(showSamples);
        if (msg.running) handlers.start({});
      } else {
        post({ type: 'restored', auto: true, step: null, problems: result.problems });
      }
      return;
    }
    // A fresh page: offer the newest valid autosave.
    try {
      const found = await newestValid();
      if (found && found.info) {
        const state = found.info.pageSettings ? JSON.parse(found.info.pageSettings) : {};
        post({ type: 'autosave-found', step: found.info.step, savedAt: found.record.savedAt, grid: found.record.grid,
          settings: state.settings || {}, problems: found.problems });
      } else if (found) post({ type: 'autosave-failed', message: `Your last autosave could not be read: ${found.problems.join('; ')}.` });
    } catch (e) { post({ type: 'autosave-failed', message: `Autosave could not be read: ${e.message || e}` }); }
  },
  async restore(msg) {
    running = false;
    await settle();
    const result = await exclusive(() => restoreLatest(msg.keep));
    if (!result.info) throw new Error(`Nothing to resume: ${result.problems.join('; ') || 'no autosave was found'}.`);
    post({ type: 'state', running: false });
    post({ type: 'restored', auto: false, step: result.info.step, digest: result.digest, savedDigest: result.info.digest,
      savedAt: result.savedAt, settings, draw, curves, problems: result.problems });
    await exclusive(showSamples);
  },
  async hidden() {
    // The tab may be closed or discarded from here on: keep what it has.
    if (session) await exclusive(() => autosave('hidden'));
  },
  async flush() {
    // Before the page replaces this worker (a backend switch): stop, save, and say so.
    running = false;
    await settle();
    let problem = null;
    try { if (session) await exclusive(() => autosave('switch')); } catch (e) { problem = (e && e.message) || String(e); }
    const ok = !session || (store !== null && saved.storedStep === lastStep);
    post({ type: 'flushed', ok, problem });
  },
  async 'debug-diverge'() { if (session) await exclusive(async () => session.debug_diverge()); },
  async 'debug-lose-device'() { if (gpuDevice) gpuDevice.destroy(); else throw new Error('no WebGPU device to lose'); },
  async 'debug-quota'() { if (store) store.failNext = 'QuotaExceededError'; },
  async 'debug-digest'() { if (session) post({ type: 'digest', digest: await exclusive(() => session.digest()), step: lastStep }); },
  async preview(msg) { sendPicture('preview', gan.dataset_preview(msg.dataset, msg.imageSize, 32), { dataset: msg.dataset }); },
  async recipe(msg) { post({ type: 'recipe', ...gan.recipe(msg.name, msg.count) }); },
  async settings(msg) { settings = { ...settings, ...msg.settings }; },
  async start(msg) {
    if (msg.settings) settings = msg.settings;
    const fromFile = !session && loaded;
    ensureSession();
    // A model file being trained on: checkpoint it first, so a divergence can roll back to it.
    if (fromFile) await exclusive(() => autosave('start'));
    saved.running = true;
    if (!running) { running = true; post({ type: 'state', running: true }); loop(); }
  },
  async resume() { return handlers.start({}); },
  async pause() {
    // Report "paused" only once the tick in flight has landed, so the counter really stops.
    running = false;
    await settle();
    post({ type: 'state', running: false });
    saved.running = false;
    await exclusive(() => autosave('pause'));
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
    // In the tick slot: a tick or an autosave holds the trainer. While training, the next tick
    // shows the new samples; otherwise draw them now.
    if (session) {
      await exclusive(async () => {
        session.set_samples(BigInt(draw.seed), draw.count, draw.truncation);
        if (!running) await showSamples();
      });
    } else if (loaded) await exclusive(showSamples);
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
    if (session) await exclusive(() => autosave('before-load'));
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
    // The autosave keeps the model being dropped until the next one trains (Resume on reload).
    if (session) await exclusive(() => autosave('before-reset'));
    saved = { step: -1, storedStep: -1, at: performance.now(), picturesId: saved.picturesId, bytes: null, info: null, running: false };
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
