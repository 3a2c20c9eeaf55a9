// The page: controls, sample and preview canvases, the loss chart. All training happens in
// worker.js; this file only sends settings and draws what comes back.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

let worker = null;
let ready = false;
let running = false;
let trainPressedAt = null;   // performance.now() when Train was pressed, until the first trained samples
let history = [];            // [step, dLoss, gLoss]
let quality = [];            // [step, swd]
let cpuDefaultsApplied = false;
let loadedInfo = null;
let keptPictures = [];      // the worker's kept pictures (Files and {file, entry}), to restore after a restart
let restorePictures = [];
let lastUpload = null;       // {count, wasmBytes} after the last picture load, for measurements
let resuming = false;        // a restarted worker is resuming the last autosave
let crashed = null;          // the fatal message that caused the restart in progress
let recoveries = [];         // times of automatic restarts (at most 3 a minute)
let persistAsked = false;
let runId = null;            // the model being trained (its autosaves carry it)
let modelUrlLoaded = false;  // ?model=<url> is loaded once, not again after a worker restart       // info of a loaded model file not yet trained on (see worker.js)
const MAX_MODEL_BYTES = 256 * 1024 * 1024; // the core refuses bigger files (modelfile.rs)

function settings() {
  return {
    dataset: $('dataset').value,
    imageSize: Number($('image-size').value),
    batch: Number($('batch').value),
    width: Number($('width').value),
    latent: Number($('latent').value),
    lrG: Number($('lr-g').value),
    lrD: Number($('lr-d').value),
    loss: $('loss').value,
    seed: Number($('seed').value),
    spectralNorm: $('spectral-norm').checked,
    augment: Number($('augment').value),
    flip: $('flip').checked,
    ema: Number($('ema').value),
    grid: 36,
  };
}

// Tests and shared links may preset any setting: ?batch=8&width=8&imageSize=16
const inputFor = { dataset: 'dataset', imageSize: 'image-size', batch: 'batch', width: 'width', latent: 'latent',
  lrG: 'lr-g', lrD: 'lr-d', loss: 'loss', seed: 'seed', augment: 'augment', ema: 'ema', backend: 'backend-choice', sampleSeed: 'sample-seed', truncation: 'truncation' };
const BUILTIN_COUNT = 512; // pictures in each built-in set (data.rs)
const checkboxFor = { spectralNorm: 'spectral-norm', flip: 'flip' };
function setControl(key, value) {
  if (checkboxFor[key]) $(checkboxFor[key]).checked = value === true || value === 'true';
  else $(inputFor[key]).value = String(value);
}
for (const key of [...Object.keys(inputFor), ...Object.keys(checkboxFor)]) if (params.has(key)) setControl(key, params.get(key));
if (params.has('recipe')) $('recipe').value = params.get('recipe');

// Recipes (recipe.rs) fill the training controls from the number of pictures; the user may
// change any of them, which makes the recipe "custom" until one is chosen again. Settings given
// in the address always win.
const recipeKeys = ['batch', 'width', 'loss', 'spectralNorm', 'lrG', 'lrD', 'augment', 'flip', 'ema'];
let recipeShown = null;
function datasetCount() {
  return $('dataset').value === 'upload' ? pictureCount : BUILTIN_COUNT;
}
function requestRecipe() {
  if (ready && $('recipe').value !== 'custom') worker.postMessage({ type: 'recipe', name: $('recipe').value, count: datasetCount() });
}
function applyRecipe(msg) {
  if ($('recipe').value === 'custom' || $('step-count').dataset.model === 'yes') return;
  recipeShown = msg;
  for (const key of recipeKeys) {
    const value = msg.settings[key];
    if (value !== undefined && value !== null && !params.has(key)) setControl(key, value);
  }
  let note = $('recipe').value === 'auto' ? `Automatic for ${datasetCount()} pictures: ${msg.label}` : msg.label;
  if ($('backend').dataset.backend === 'cpu') {
    // The CPU is far slower: start smaller, never over what the address preset.
    for (const [key, most] of [['batch', 16], ['width', 16]]) {
      if (!params.has(key) && Number($(inputFor[key]).value) > most) setControl(key, most);
    }
    note += '; smaller batch and width on the CPU';
  }
  $('recipe-note').textContent = `${note}. Change any setting below to make it your own.`;
}
for (const key of recipeKeys) {
  const id = inputFor[key] || checkboxFor[key];
  $(id).addEventListener('change', () => {
    $('recipe').value = 'custom';
    $('recipe-note').textContent = 'Custom settings: choose a recipe to start from one again.';
  });
}
$('recipe').onchange = () => {
  if ($('recipe').value === 'custom') $('recipe-note').textContent = 'Custom settings: choose a recipe to start from one again.';
  else requestRecipe();
};

function notice(text, kind) {
  $('notice').hidden = !text;
  $('notice').className = `notice ${kind || ''}`;
  $('notice-text').textContent = text || '';
  $('restart').hidden = kind !== 'fatal';
}

function updateButtons() {
  const hasModel = $('step-count').dataset.model === 'yes';
  // A loaded file without its discriminator can draw samples but not train.
  const frozen = !hasModel && loadedInfo && !loadedInfo.hasDiscriminator;
  $('train').disabled = !ready || running || frozen;
  $('train').textContent = hasModel ? 'Resume' : loadedInfo ? 'Continue training' : 'Train';
  $('pause').disabled = !ready || !running;
  $('step').disabled = !ready || running || frozen;
  $('reset').disabled = !ready || !(hasModel || loadedInfo);
  $('download').disabled = !ready || !(hasModel || loadedInfo);
  $('load').disabled = !ready;
  $('new-samples').disabled = !ready || !(hasModel || loadedInfo);
  $('settings').disabled = hasModel;
  $('prep').disabled = hasModel; // the pictures a model trains on are fixed while it exists
  for (const id of ['add-pictures', 'add-folder', 'clear-pictures']) $(id).disabled = !ready || hasModel;
  $('dataset').disabled = hasModel;
  $('backend-choice').disabled = !ready;
  // A loaded model fixes its architecture; the training settings stay editable.
  for (const id of ['image-size', 'width', 'latent', 'loss', 'spectral-norm']) $(id).disabled = Boolean(loadedInfo);
}

function drawSettings() {
  const t = $('truncation').value;
  return { seed: Number($('sample-seed').value), truncation: t === '' ? undefined : Number(t) };
}

function draw(canvasId, msg) {
  const canvas = $(canvasId);
  canvas.width = msg.width;
  canvas.height = msg.height;
  canvas.getContext('2d').putImageData(new ImageData(msg.rgba, msg.width, msg.height), 0, 0);
}

// An empty sample canvas says what will appear there instead of showing a blank box.
function placeholder() {
  const c = $('samples');
  c.width = 400; c.height = 400;
  const g = c.getContext('2d');
  g.fillStyle = '#40404a'; g.fillRect(0, 0, c.width, c.height);
  g.fillStyle = '#e2e6ef'; g.font = '18px system-ui'; g.textAlign = 'center';
  g.fillText('Press Train: generated samples', 200, 190);
  g.fillText('appear here and improve live', 200, 216);
}

function drawChart() {
  const c = $('chart');
  const g = c.getContext('2d');
  const W = c.width, H = c.height, L = 40, B = 24;
  g.clearRect(0, 0, W, H);
  g.fillStyle = '#fff'; g.fillRect(0, 0, W, H);
  g.strokeStyle = '#8a93a6'; g.beginPath(); g.moveTo(L, 4); g.lineTo(L, H - B); g.lineTo(W - 4, H - B); g.stroke();
  g.fillStyle = '#4a5468'; g.font = '11px system-ui';
  if (!history.length) { g.fillText('losses appear here once training starts', L + 10, H / 2); return; }
  const maxStep = Math.max(1, history[history.length - 1][0]);
  const maxLoss = Math.max(1e-3, ...history.map(([, d, gl]) => Math.max(d, gl)));
  const minLoss = Math.min(0, ...history.map(([, d, gl]) => Math.min(d, gl)));
  const x = (s) => L + ((W - 4 - L) * s) / maxStep;
  const y = (v) => H - B - ((H - B - 6) * (v - minLoss)) / (maxLoss - minLoss);
  g.fillText(maxLoss.toFixed(2), 2, y(maxLoss) + 8);
  g.fillText(minLoss.toFixed(2), 2, y(minLoss));
  g.fillText('0', L - 4, H - 8);
  g.fillText(`step ${maxStep}`, W - 60, H - 8);
  for (const [col, color] of [[1, '#d9534f'], [2, '#2a6df4']]) {
    g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
    history.forEach((h, i) => (i ? g.lineTo(x(h[0]), y(h[col])) : g.moveTo(x(h[0]), y(h[col]))));
    g.stroke();
  }
}

// The SWD curve: one point per quality score.
function drawQuality() {
  const c = $('quality-chart');
  const g = c.getContext('2d');
  const W = c.width, H = c.height, L = 44, B = 20;
  g.fillStyle = '#fff'; g.fillRect(0, 0, W, H);
  g.strokeStyle = '#8a93a6'; g.beginPath(); g.moveTo(L, 4); g.lineTo(L, H - B); g.lineTo(W - 4, H - B); g.stroke();
  g.fillStyle = '#4a5468'; g.font = '11px system-ui';
  if (!quality.length) { g.fillText('the quality score appears here while training', L + 10, H / 2); return; }
  const maxStep = Math.max(1, quality[quality.length - 1][0]);
  const maxV = Math.max(...quality.map((q) => q[1]));
  const x = (s) => L + ((W - 8 - L) * s) / maxStep;
  const y = (v) => H - B - ((H - B - 8) * v) / maxV;
  g.fillText(maxV.toFixed(0), 2, y(maxV) + 8);
  g.fillText('0', L - 10, H - B);
  g.fillText(`step ${maxStep}`, W - 60, H - 6);
  g.strokeStyle = '#2f9e44'; g.fillStyle = '#2f9e44'; g.lineWidth = 1.5; g.beginPath();
  quality.forEach((q, i) => (i ? g.lineTo(x(q[0]), y(q[1])) : g.moveTo(x(q[0]), y(q[1]))));
  g.stroke();
  for (const q of quality) g.fillRect(x(q[0]) - 2, y(q[1]) - 2, 4, 4);
}

const onMessage = {
  ready(msg) {
    ready = true;
    $('backend').textContent = msg.backend === 'webgpu' ? `WebGPU: ${msg.adapter}` : 'CPU (Flex in WebAssembly)';
    $('backend').dataset.backend = msg.backend;
    if (msg.notice) notice(msg.notice);
    if (msg.backend === 'cpu' && !cpuDefaultsApplied) {
      // The CPU is far slower: start at 16 px, once, unless the address set a size.
      cpuDefaultsApplied = true;
      if (!params.has('imageSize')) $('image-size').value = '16';
    }
    if (restorePictures.length && !resuming) {
      const chosen = $('dataset').value;
      sendPictures(restorePictures);
      $('dataset').value = chosen;
      $('upload-text').textContent = `Preparing your ${restorePictures.length} pictures again…`;
      restorePictures = [];
    }
    // After sendPictures, which clears notices.
    if (crashed && !resuming) {
      notice(`${causeOf(crashed)}. The training core was restarted; your pictures and settings are kept.`, 'warning');
      crashed = null;
    }
    requestPreview();
    requestRecipe();
    sendDraw();
    if (params.has('model') && !modelUrlLoaded) { modelUrlLoaded = true; loadModelUrl(params.get('model')); }
    updateButtons();
  },
  recipe(msg) { applyRecipe(msg); },
  preview(msg) {
    if ($('dataset').value === 'upload') return;
    draw('preview', msg); $('preview-caption').textContent = `Real images: ${$('dataset').selectedOptions[0].text}`; },
  model(msg) {
    loadedInfo = null;
    $('params').textContent = `${msg.generatorParams.toLocaleString()} / ${msg.discriminatorParams.toLocaleString()}`;
    const m = msg.memory, MB = (b) => (b / 1e6).toFixed(b < 1e7 ? 1 : 0);
    $('memory').textContent = `${MB(m.total)} MB`;
    $('memory').title = `weights ${MB(m.weights)} MB, gradients ${MB(m.gradients)} MB, Adam moments ${MB(m.adam)} MB, activations ${MB(m.activations)} MB (an estimate)`;
    $('step-count').dataset.model = 'yes';
    runId = msg.runId || runId;
    updateButtons();
  },
  state(msg) {
    running = msg.running;
    if (msg.reset) {
      $('step-count').dataset.model = 'no';
      $('step-count').textContent = '0';
      for (const id of ['d-loss', 'g-loss', 'first-samples', 'first-step', 'params', 'memory']) $(id).textContent = '–';
      $('speed').textContent = '– steps/s';
      history = []; drawChart();
      quality = []; drawQuality();
      $('swd').textContent = '–';
      $('copies').textContent = '–';
      $('pairs-box').hidden = true;
      placeholder();
      loadedInfo = null;
      $('loaded').hidden = true;
    }
    updateButtons();
  },
  samples(msg) {
    draw('samples', msg);
    const d = drawSettings();
    $('samples-caption').textContent = `Generated samples: seed ${d.seed}, ${d.truncation === undefined ? 'no truncation' : `truncation ${d.truncation}`}, step ${msg.step}`;
    if (trainPressedAt !== null) {
      // Two times: the first grid (the untrained generator's, drawn while the step-0 score runs)
      // and the first grid after a training step.
      const since = `${((performance.now() - trainPressedAt) / 1000).toFixed(1)} s`;
      if ($('first-samples').textContent === '–') $('first-samples').textContent = since;
      if (msg.step < 1) return;
      $('first-step').textContent = since;
      trainPressedAt = null;
    }
  },
  progress(msg) {
    $('step-count').textContent = String(msg.step);
    $('speed').textContent = `${msg.stepsPerSec < 1 ? msg.stepsPerSec.toFixed(3) : msg.stepsPerSec.toFixed(1)} steps/s`;
    $('d-loss').textContent = msg.dLoss.toFixed(3);
    $('g-loss').textContent = msg.gLoss.toFixed(3);
    history.push([msg.step, msg.dLoss, msg.gLoss]);
    if (history.length > 2000) history = history.filter((_, i) => i % 2 === 0);
    drawChart();
  },
  loaded(msg) {
    // Everything from the file is shown as text (textContent), never as HTML.
    const i = msg.info, m = i.metadata;
    loadedInfo = i;
    let dataset = 'not recorded', builtin = null;
    try {
      const d = JSON.parse(m.dataset);
      dataset = `${d.source}, ${d.count} images`;
      builtin = JSON.parse(m.preprocessing || '{}').builtin || null;
    } catch { /* older or hand-made files: leave "not recorded" */ }
    $('loaded-name').textContent = m.title || msg.name || 'untitled';
    $('loaded-step').textContent = `${i.step.toLocaleString()} steps`;
    $('loaded-shape').textContent = `${i.imageSize} × ${i.imageSize} px, ${i.channels === 1 ? 'grayscale' : 'colour'}, latent ${i.latent}`;
    $('loaded-dataset').textContent = dataset;
    $('loaded-created').textContent = m.created ? new Date(m.created).toLocaleString() : 'not recorded';
    $('loaded-resumable').textContent = i.hasDiscriminator
      ? 'yes (fresh optimiser state)'
      : 'no: the file has no discriminator, so it can only draw samples';
    $('loaded').hidden = false;
    $('step-count').textContent = String(i.step);
    $('params').textContent = `${i.generatorParams.toLocaleString()} / ${i.discriminatorParams === undefined || i.discriminatorParams === null ? '–' : i.discriminatorParams.toLocaleString()}`;
    // Continue training with the architecture of the file (and its built-in set when known).
    $('image-size').value = String(i.imageSize);
    $('width').value = String(i.width);
    $('latent').value = String(i.latent);
    try {
      const config = JSON.parse(m.model_config);
      $('loss').value = config.loss === 'Hinge' ? 'hinge' : 'nonsaturating';
      $('spectral-norm').checked = config.spectral_norm === true;
    } catch { /* validated by the core */ }
    if (builtin && [...$('dataset').options].some((o) => o.value === builtin)) $('dataset').value = builtin;
    requestPreview();
    updateButtons();
  },
  quality(msg) {
    quality.push([msg.step, msg.swd]);
    $('swd').textContent = msg.swd.toFixed(1);
    $('copies').textContent = `${msg.copies} of 64`;
    $('copies').title = `samples closer to a training picture than any two training pictures are (${msg.trainGap.toFixed(1)} RMS levels)`;
    const d = msg.nearest.slice(0, 4).map((n) => n[2].toFixed(1)).join(', ');
    $('pairs-caption').textContent = `The ${Math.min(4, msg.nearest.length)} samples closest to a training picture (left), each beside that picture (right), at step ${msg.step}. ` +
      `Distances ${d}; the two closest training pictures are ${msg.trainGap.toFixed(1)} apart (RMS, 0–255 levels): a sample nearer than that looks copied.`;
    drawQuality();
  },
  pairs(msg) { draw('pairs', msg); $('pairs-box').hidden = false; },
  'model-file'(msg) {
    // One .safetensors file: G and D weights with the config in its metadata.
    const url = URL.createObjectURL(new Blob([msg.bytes], { type: 'application/octet-stream' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: `gan-playground-step-${msg.step}.safetensors` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  },
  error(msg) { notice(msg.message, 'error'); },
  fatal(msg) {
    ready = false; running = false;
    // A crash, a lost GPU or a dead worker: start a new worker that resumes from the last
    // autosave, unless it keeps failing (3 times within a minute) or never started at all.
    const now = Date.now();
    recoveries = recoveries.filter((t) => now - t < 60_000);
    if (msg.kind !== 'start' && recoveries.length < 3) {
      recoveries.push(now);
      crashed = msg;
      // With a model, the new worker resumes the last autosave; without one (none trained yet,
      // or Reset), it starts empty and gets the pictures again.
      const hadModel = $('step-count').dataset.model === 'yes';
      notice(`${msg.message} Restarting the training core${hadModel ? ' from your last autosave' : ''}…`, 'warning');
      startWorker({ resume: hadModel, running: msg.running, expectRun: msg.runId || runId });
      return;
    }
    const again = recoveries.length >= 3 ? ' It failed 3 times within a minute, so it was not restarted automatically.' : '';
    notice(`${msg.message}${again} Your settings and autosave are kept; restart to go on.`, 'fatal');
    updateButtons();
  },
};

function startWorker(opts = {}) {
  if (worker) worker.terminate();
  ready = false; running = false;
  resuming = Boolean(opts.resume);
  worker = new Worker('worker.js', { type: 'module' });
  worker.onmessage = (e) => onMessage[e.data.type] && onMessage[e.data.type](e.data);
  // The worker reports its own crashes as `fatal`; what reaches here is a failure to load it.
  worker.onerror = (e) => onMessage.fatal({
    message: ready ? `The training worker failed: ${e.message || 'unknown error'}.` : `The training worker failed to load: ${e.message || 'unknown error'}.`,
    kind: ready ? 'crash' : 'start', running,
  });
  // A new worker starts without the pictures of the old one: it resumes them from the autosave,
  // or they are prepared again once it is ready (the page keeps the Files, not their pixels).
  restorePictures = keptPictures;
  keptPictures = [];
  // ?qualityEvery=N scores quality every N steps (default 50); ?autosaveMs / ?autosaveSteps set
  // the autosave interval (default 30 s or 500 steps). The tests use smaller values.
  const num = (key) => Number(params.get(key)) || undefined;
  worker.postMessage({ type: 'init', backend: $('backend-choice').value, qualityEvery: num('qualityEvery'),
    autosaveMs: num('autosaveMs'), autosaveSteps: num('autosaveSteps'), resume: resuming, running: Boolean(opts.running),
    expectRun: opts.expectRun, keep: restorePictures });
  pictureCount = 0;
  lastUpload = null;
  clearPictureMessages();
  $('upload-status').hidden = true;
  $('upload-text').textContent = '';
  onMessage.state({ running: false, reset: true });
}

function requestPreview() {
  if (!ready) return;
  if ($('dataset').value === 'upload') worker.postMessage({ type: 'pictures-show' });
  else worker.postMessage({ type: 'preview', dataset: $('dataset').value, imageSize: Number($('image-size').value) });
}

// ---- Your pictures: added by the buttons or a drop, prepared and kept in the worker ----
let pictureCount = 0;
let pictureMessages = 0;

function prep() {
  const hex = $('prep-background').value;
  return {
    size: Number($('image-size').value),
    channels: Number($('prep-color').value),
    fit: $('prep-fit').value,
    background: [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)),
  };
}

function clearPictureMessages() {
  pictureMessages = 0;
  $('picture-messages').replaceChildren();
  $('picture-messages-box').hidden = true;
}

function sendPictures(files) {
  // Hidden files are skipped; kept archive entries ({file, entry}) always go.
  const pictures = files.filter((f) => !(f instanceof File) || !f.name.startsWith('.'));
  if (!pictures.length) return;
  if (!ready) { notice('The training worker is still starting; add the pictures again in a moment.', 'error'); return; }
  notice(null);
  if (!pictureCount) clearPictureMessages();
  $('dataset').value = 'upload';
  $('upload-status').hidden = false;
  $('cancel-pictures').hidden = false;
  $('upload-progress').max = pictures.length;
  $('upload-progress').value = 0;
  $('upload-text').textContent = `Loading ${pictures.length} files…`;
  worker.postMessage({ type: 'pictures', files: pictures, prep: prep() });
}

function preparationChanged() {
  if (!pictureCount) { requestPreview(); return; }
  clearPictureMessages();
  $('upload-status').hidden = false;
  $('cancel-pictures').hidden = false;
  $('upload-text').textContent = 'Preparing your pictures again…';
  worker.postMessage({ type: 'pictures-prep', prep: prep() });
}

Object.assign(onMessage, {
  'pictures-kept'(msg) { keptPictures = msg.items; },
  'pictures-progress'(msg) {
    $('upload-progress').max = msg.total;
    $('upload-progress').value = msg.done;
    $('upload-text').textContent = `Loading pictures: ${msg.done} of ${msg.total} files, ${msg.count} kept`;
  },
  'picture-message'(msg) {
    pictureMessages++;
    const li = document.createElement('li');
    li.textContent = msg.message; // file names are text, never HTML
    $('picture-messages').append(li);
    $('picture-messages-summary').textContent = `Skipped files and duplicates (${pictureMessages})`;
    $('picture-messages-box').hidden = false;
  },
  'pictures-preview'(msg) {
    if (pictureCount !== msg.count && $('dataset').value === 'upload') { pictureCount = msg.count; requestRecipe(); }
    pictureCount = msg.count;
    $('cancel-pictures').hidden = true;
    $('clear-pictures').hidden = false;
    if (msg.total !== undefined) {
      $('upload-status').hidden = false;
      $('upload-progress').value = $('upload-progress').max;
      const skipped = msg.done - msg.added - msg.duplicates;
      lastUpload = { count: msg.count, wasmBytes: msg.wasmBytes };
      $('upload-text').textContent = `${msg.count} pictures ready` +
        (msg.cancelled ? ' (loading cancelled)' : '') +
        (skipped ? `, ${skipped} ${skipped === 1 ? 'file' : 'files'} skipped` : '') +
        (msg.duplicates ? `, ${msg.duplicates} ${msg.duplicates === 1 ? 'duplicate' : 'duplicates'} dropped` : '');
    }
    if ($('dataset').value !== 'upload') return;
    draw('preview', msg);
    $('preview').classList.add('removable');
    $('preview').dataset.tiles = String(Math.min(msg.count, 64));
    $('preview-caption').textContent = `Your pictures: ${msg.count} (first ${Math.min(msg.count, 64)} shown; click one to remove it)`;
  },
  'pictures-empty'(msg) {
    pictureCount = 0;
    if ($('dataset').value === 'upload') requestRecipe();
    $('clear-pictures').hidden = true;
    if (msg.cleared) { $('upload-status').hidden = true; clearPictureMessages(); }
    if ($('dataset').value !== 'upload') return;
    const c = $('preview');
    c.width = 240; c.height = 60;
    const g = c.getContext('2d');
    g.fillStyle = '#40404a'; g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = '#e2e6ef'; g.font = '13px system-ui'; g.textAlign = 'center';
    g.fillText('Add pictures or drop them here', 120, 35);
    $('preview').classList.remove('removable');
    $('preview-caption').textContent = 'Your pictures: none yet';
  },
});

// ---- Autosave: the resume prompt, the status line, recovery messages ----
let lastAutosave = null;     // {step, digest, at} of the last autosave (or the one resumed)
const mb = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
const clock = (ms) => new Date(ms).toLocaleTimeString();

function applySettings(saved) {
  // Restored settings are the model's own: no recipe applies to them.
  $('recipe').value = 'custom';
  $('recipe-note').textContent = 'Settings restored from your autosave.';
  for (const [key, value] of Object.entries(saved || {})) {
    if (value !== undefined && value !== null && (inputFor[key] || checkboxFor[key])) setControl(key, value);
  }
}

// What happened, in words, from a fatal message ("The GPU was reset (…)").
function causeOf(fatal) {
  return fatal.message.replace(/\.$/, '');
}

function askPersistence() {
  // Ask once that this page's storage survive the browser's clean-ups (autosaves live there).
  if (persistAsked || !navigator.storage || !navigator.storage.persist) return;
  persistAsked = true;
  navigator.storage.persist().then((granted) => { $('autosave').dataset.persisted = String(granted); }).catch(() => {});
}

Object.assign(onMessage, {
  'autosave-found'(msg) {
    if ($('step-count').dataset.model === 'yes') return;
    if (msg.grid) draw('resume-grid', msg.grid);
    $('resume-grid').hidden = !msg.grid;
    const s = msg.settings || {};
    const what = s.dataset === 'upload' ? 'your pictures' : `the built-in ${s.dataset || 'shapes'} set`;
    $('resume-text').textContent = `Step ${msg.step.toLocaleString()} of training on ${what} at ${s.imageSize || '?'} px, ` +
      `saved ${new Date(msg.savedAt).toLocaleString()}.` + (msg.problems.length ? ` (${msg.problems.join('; ')}; the older autosave is offered.)` : '');
    $('resume-box').hidden = false;
  },
  autosaved(msg) {
    lastAutosave = { step: msg.step, digest: msg.digest, at: Date.now() };
    const room = msg.quota ? `; this site uses ${mb(msg.usage)} of ${mb(msg.quota)} allowed` : '';
    const kept = $('autosave').dataset.persisted === 'true' ? ', kept even when space runs low' : '';
    if ($('autosave').classList.contains('failed') && /^Autosave failed/.test($('notice-text').textContent)) notice(null);
    $('autosave').classList.remove('failed');
    $('autosave').textContent = `Autosaved step ${msg.step.toLocaleString()} at ${clock(Date.now())} (${mb(msg.bytes)} in ${(msg.ms / 1000).toFixed(1)} s${kept})${room}.`;
  },
  'autosave-failed'(msg) {
    $('autosave').classList.add('failed');
    $('autosave').textContent = msg.message;
    if (msg.quota) notice(msg.message, 'warning');
  },
  restored(msg) {
    resuming = false;
    const cause = crashed ? causeOf(crashed) : null;
    crashed = null;
    if (msg.step === null) {
      // Nothing to resume: the pictures are prepared again and training starts over.
      const why = msg.problems.length ? `Its autosave could not be resumed: ${msg.problems.join('; ')}` : 'There was no autosave of this model yet';
      if (cause) notice(`${cause}. ${why}, so training starts again.`, 'warning');
      if (restorePictures.length) { const items = restorePictures; restorePictures = []; sendPictures(items); }
      return;
    }
    restorePictures = [];
    applySettings(msg.settings);
    if (msg.draw) {
      setControl('sampleSeed', msg.draw.seed);
      setControl('truncation', msg.draw.truncation ?? '');
    }
    // The curves saved with the checkpoint.
    history = (msg.curves && msg.curves.losses) || [];
    quality = (msg.curves && msg.curves.quality) || [];
    drawChart();
    drawQuality();
    $('resume-box').hidden = true;
    $('step-count').textContent = String(msg.step);
    lastAutosave = { step: msg.step, digest: msg.savedDigest, resumedDigest: msg.digest, at: Date.now() };
    $('autosave').classList.remove('failed');
    $('autosave').textContent = `Resumed the autosave of step ${msg.step.toLocaleString()} (saved ${clock(msg.savedAt)}).`;
    if (cause) notice(`${cause}. Resumed from step ${msg.step.toLocaleString()}, the last autosave.`, 'warning');
    requestPreview();
    updateButtons();
  },
  'rolled-back'(msg) {
    notice(msg.message, 'warning');
    history = history.filter((h) => h[0] <= msg.to);
    quality = quality.filter((q) => q[0] <= msg.to);
    drawChart();
    drawQuality();
    setControl('lrG', msg.lrG);
    setControl('lrD', msg.lrD);
    $('step-count').textContent = String(msg.to);
  },
  digest(msg) { lastAutosave = { ...(lastAutosave || {}), liveDigest: msg.digest, liveStep: msg.step }; },
});
$('resume-yes').onclick = () => { notice(null); worker.postMessage({ type: 'restore', keep: keptPictures }); };
$('resume-no').onclick = () => { $('resume-box').hidden = true; };
// A hidden tab may be closed or discarded without warning: autosave now.
document.addEventListener('visibilitychange', () => { if (document.hidden && ready) worker.postMessage({ type: 'hidden' }); });

$('add-pictures').onclick = () => $('picture-files').click();
$('add-folder').onclick = () => $('picture-folder').click();
for (const id of ['picture-files', 'picture-folder']) {
  $(id).onchange = () => { const files = [...$(id).files]; $(id).value = ''; sendPictures(files); };
}
$('cancel-pictures').onclick = () => worker.postMessage({ type: 'pictures-cancel' });
$('clear-pictures').onclick = () => worker.postMessage({ type: 'pictures-clear' });
for (const id of ['prep-color', 'prep-fit', 'prep-background']) $(id).onchange = preparationChanged;
$('preview').onclick = (e) => {
  if ($('dataset').value !== 'upload' || !pictureCount || $('step-count').dataset.model === 'yes') return;
  // Tiles are `size` pixels with a 1-pixel gap, 8 to a row (render.rs).
  const c = $('preview'), size = prep().size;
  const x = ((e.offsetX / c.clientWidth) * c.width - 1) / (size + 1);
  const y = ((e.offsetY / c.clientHeight) * c.height - 1) / (size + 1);
  const index = Math.floor(y) * 8 + Math.floor(x);
  if (x >= 0 && x < 8 && y >= 0 && index < Number(c.dataset.tiles)) worker.postMessage({ type: 'pictures-remove', index });
};

// Files from a drop: folders are walked (webkitGetAsEntry is the one way a page can read them).
async function droppedFiles(dataTransfer) {
  const entries = [...(dataTransfer.items || [])].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...(dataTransfer.files || [])];
  const files = [];
  async function walk(entry) {
    if (entry.isFile) {
      files.push(await new Promise((res, rej) => entry.file(res, rej)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  }
  for (const e of entries) await walk(e);
  return files;
}

$('train').onclick = () => {
  notice(null);
  const fresh = $('step-count').dataset.model !== 'yes';
  if (fresh) trainPressedAt = performance.now();
  $('resume-box').hidden = true;
  askPersistence();
  worker.postMessage(fresh ? { type: 'start', settings: settings() } : { type: 'resume' });
};
$('pause').onclick = () => worker.postMessage({ type: 'pause' });
$('step').onclick = () => worker.postMessage({ type: 'step', settings: settings() });
$('reset').onclick = () => { notice(null); worker.postMessage({ type: 'reset' }); };
$('download').onclick = () => worker.postMessage({
  type: 'save',
  title: loadedInfo ? loadedInfo.metadata.title || '' : `${$('dataset').selectedOptions[0].text}, trained in GAN Playground`,
});

// Model files: the Load button, a drop anywhere on the page, or ?model=<url>.
async function loadModelFile(file) {
  notice(null);
  if (file.size > MAX_MODEL_BYTES) {
    notice(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MB; model files are at most 256 MB.`, 'error');
    return;
  }
  const bytes = await file.arrayBuffer();
  worker.postMessage({ type: 'load', name: file.name, bytes }, [bytes]);
}
$('load').onclick = () => $('model-file').click();
$('model-file').onchange = () => {
  const file = $('model-file').files[0];
  $('model-file').value = '';
  if (file) loadModelFile(file);
};
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) document.body.classList.remove('dragging'); });
document.addEventListener('drop', async (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const files = await droppedFiles(e.dataTransfer);
  if (!files.length) return;
  if (!ready) { notice('The training worker is still starting; drop the files again in a moment.', 'error'); return; }
  const models = files.filter((f) => f.name.toLowerCase().endsWith('.safetensors'));
  if (models.length > 1) { notice('Drop one model file (.safetensors) at a time.', 'error'); return; }
  if (models.length) { loadModelFile(models[0]); return; }
  sendPictures(files);
});
async function loadModelUrl(url) {
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`the server answered ${res.status} ${res.statusText}`);
    const blob = await res.blob();
    const name = decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || 'model');
    await loadModelFile(new File([blob], name));
  } catch (e) {
    notice(`Could not fetch the model at ${url}: ${e.message}`, 'error');
  }
}

// Sample seed and truncation: which images the grid shows (training is unaffected).
function sendDraw() { if (ready) worker.postMessage({ type: 'draw', ...drawSettings() }); }
$('sample-seed').onchange = sendDraw;
$('truncation').onchange = sendDraw;
$('new-samples').onclick = () => { $('sample-seed').value = String(Number($('sample-seed').value) + 1); sendDraw(); };
$('restart').onclick = () => { notice(null); recoveries = []; startWorker({ resume: Boolean(runId), expectRun: runId }); };
$('dataset').onchange = () => { $('preview').classList.remove('removable'); requestPreview(); requestRecipe(); };
$('image-size').onchange = () => (pictureCount ? preparationChanged() : requestPreview());
// Switching backends replaces the worker: a model being trained is saved first and resumed on
// the new backend (its autosave is the same on WebGPU and on the CPU).
let flushed = null;
onMessage.flushed = (msg) => { if (flushed) flushed(msg); };
$('backend-choice').onchange = async () => {
  const hadModel = ready && $('step-count').dataset.model === 'yes';
  $('backend-choice').disabled = true;
  if (hadModel) {
    $('autosave').textContent = 'Saving before switching the backend…';
    const done = new Promise((r) => { flushed = r; });
    worker.postMessage({ type: 'flush' });
    const result = await Promise.race([done, new Promise((r) => setTimeout(() => r({ ok: false, problem: 'no answer in 60 s' }), 60_000))]);
    flushed = null;
    if (!result.ok) {
      // Switching would lose what is not saved: stay, and say why.
      $('backend-choice').value = $('backend').dataset.backend === 'cpu' ? 'cpu' : 'auto';
      notice(`The model could not be saved before switching backends (${result.problem || 'storage is unavailable'}), so the backend was not switched. Download the model first.`, 'error');
      updateButtons();
      return;
    }
  }
  startWorker({ resume: hadModel, expectRun: runId });
};

// For the browser tests: crash the worker, lose the GPU, make training diverge or storage fail
// on purpose, to exercise the recovery paths.
const debug = (type) => () => worker.postMessage({ type });
window.ganDebug = { crash: debug('crash'), loseDevice: debug('debug-lose-device'), diverge: debug('debug-diverge'),
  failQuota: debug('debug-quota'), digest: debug('debug-digest'), autosaved: () => lastAutosave,
  quality: () => quality.slice(), curves: () => ({ losses: history.length, quality: quality.length }), upload: () => lastUpload, droppedFiles };

drawChart();
drawQuality();
startWorker();
