#!/usr/bin/env node
// Side-by-side benchmark (not a test): our reference DCGAN (32x32x3, latent 100, batch 64; the
// layers of shared/bench-tfjs/page/dcgan.js) against TensorFlow.js 4.22 training the same model,
// in the same headless Chromium on the same adapter, in one run. Prints one table.
//
//   node bench/bench.mjs [--tfjs=DIR] [--steps=3] [--budget=300] [--batch=64] [--only=ours|tfjs]
//                        [--backends=webgpu,cpu]
//                        [--native=PATH/TO/gan]
//
// Ours: the wasm core loaded in a fresh Chromium per backend (tests/e2e/core.html), on WebGPU and
// on the CPU fallback (Flex), one step then one async readback of the losses (as TF.js's step
// awaits its losses), and the same with 8 steps per readback (the page's cadence adapts k).
// TF.js: DIR/bench.mjs (a copy of shared/bench-tfjs with its packages installed) on webgpu and
// wasm (its fastest CPU backend). Run through `.ci/bench`, which builds and installs all this.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launch, ROOT } from '../tests/e2e/harness.mjs';

const opt = { tfjs: path.join(ROOT, 'target/bench-tfjs'), steps: 3, budget: 300, batch: 64, only: '', backends: 'webgpu,cpu', native: '' };
for (const a of process.argv.slice(2)) {
  const m = a.match(/^--([^=]+)=(.*)$/);
  if (!m || !(m[1] in opt)) { console.error(`unknown option ${a}`); process.exit(2); }
  opt[m[1]] = typeof opt[m[1]] === 'number' ? Number(m[2]) : m[2];
}
const backends = opt.backends.split(',');
const REFERENCE = { dataset: 'shapes', imageSize: 32, latent: 100, width: 64, batch: opt.batch, grid: 1,
  loss: 'nonsaturating', spectralNorm: false, augment: 0, flip: false, ema: 0, seed: 1 };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };

// One backend of ours in a fresh browser: first step (compiling included), then warm steps with a
// readback after each (k = 1) and after every 8 (k = 8), within the time budget.
async function ours(backend, base) {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/tests/e2e/core.html`);
    await page.evaluate(() => window.ganReady);
    const label = await page.evaluate((b) => window.gan.init_backend(b), backend);
    return await page.evaluate(async ({ settings, steps, budgetMs }) => {
      const t0 = performance.now();
      const s = new window.gan.Session(settings);
      const buildMs = performance.now() - t0;
      const timed = async (k) => { const t = performance.now(); const r = await s.run(k); const out = { ms: (performance.now() - t) / k, d: r.d_loss, g: r.g_loss }; r.free(); return out; };
      const first = await timed(1);
      const k1 = [], k8 = [];
      const end = performance.now() + budgetMs;
      while (k1.length < steps && (performance.now() < end || k1.length === 0)) k1.push(await timed(1));
      if (performance.now() < end) k8.push(await timed(8));
      const finite = [first, ...k1, ...k8].every((r) => Number.isFinite(r.d) && Number.isFinite(r.g));
      return { buildMs, firstMs: first.ms, k1: k1.map((r) => r.ms), k8: k8.map((r) => r.ms), finite };
    }, { settings: REFERENCE, steps: opt.steps, budgetMs: opt.budget * 1000 }).then((r) => ({ ...r, label }));
  } catch (e) {
    return { error: String(e.message || e).split('\n')[0] };
  } finally {
    await browser.close();
  }
}

// Runs the TF.js harness and reads its results file. The harness does not always exit once it
// has written its results (its process stays up with nothing left to do), so it is stopped once
// the file is new.
async function tfjs(backends) {
  const script = path.join(opt.tfjs, 'bench.mjs');
  if (!fs.existsSync(script)) return Object.fromEntries(backends.map((b) => [b, { error: `no TF.js harness at ${opt.tfjs}` }]));
  const file = path.join(opt.tfjs, 'results/latest.json');
  const started = Date.now();
  const child = spawn('node', [script, ...backends, `--steps=${opt.steps}`, '--warmup=1', `--budget=${opt.budget}`, `--batch=${opt.batch}`, '--quiet'],
    { cwd: opt.tfjs, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', r));
  const fresh = () => fs.existsSync(file) && fs.statSync(file).mtimeMs > started;
  while (!fresh()) {
    if (await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))])) break;
  }
  if (child.exitCode === null) child.kill();
  if (!fresh()) return Object.fromEntries(backends.map((b) => [b, { error: 'the TF.js harness wrote no results' }]));
  const out = JSON.parse(fs.readFileSync(file, 'utf8'));
  const by = {};
  for (const r of out.results) {
    const name = r.label.replace(/\+bpf$/, '');
    if (!r.ok && by[name]) continue;
    by[name] = r.ok ? { firstMs: r.timings.firstStepMs, stepMs: r.timings.medianStepMs, finite: r.lossesFinite, label: r.label } : { error: r.error };
  }
  return by;
}

const fmt = (ms) => (ms == null || Number.isNaN(ms) ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const rate = (ms) => (ms ? (1000 / ms).toFixed(ms > 1000 ? 4 : 2) : '-');
function table(rows, headers) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ');
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

// The page's main thread while the worker trains: long tasks (> 50 ms, the Long Tasks API) in
// `seconds` of training a tiny model, whose frequent ticks give the main thread the most to draw.
async function responsiveness(base, seconds = 30) {
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${base}/www/index.html?dataset=shapes&imageSize=16&batch=8&width=8&latent=16`);
    await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 120_000 });
    await page.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((l) => window.longTasks.push(...l.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
    });
    await page.click('#train');
    await page.waitForFunction(() => Number(document.getElementById('step-count').textContent) > 0, null, { timeout: 300_000 });
    const s0 = Number(await page.textContent('#step-count'));
    await page.evaluate(() => { window.longTasks.length = 0; });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const tasks = await page.evaluate(() => window.longTasks);
    const steps = Number(await page.textContent('#step-count')) - s0;
    return { seconds, steps, count: tasks.length, maxMs: tasks.length ? Math.max(...tasks) : 0 };
  } catch (e) {
    return { error: String(e.message || e).split('\n')[0] };
  } finally {
    await browser.close();
  }
}

const { server, base } = await startServer();
const results = {};
let page = null;
try {
  if (opt.only !== 'tfjs') {
    for (const backend of backends) {
      process.stderr.write(`[bench] ours, ${backend}…\n`);
      results[`ours ${backend}`] = await ours(backend, base);
    }
    if (backends.includes('webgpu')) {
      process.stderr.write('[bench] the page while training…\n');
      page = await responsiveness(base);
    }
  }
} finally {
  server.close();
}
if (opt.only !== 'ours') process.stderr.write('[bench] TF.js webgpu, wasm…\n');
const theirs = opt.only === 'ours' ? {} : await tfjs(backends.map((b) => (b === 'cpu' ? 'wasm' : b)));

const chromium = execFileSync(process.env.CHROMIUM || '/usr/bin/chromium', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
console.log(`Reference DCGAN 32x32x3, latent 100, batch ${opt.batch}; ${chromium}; ${os.cpus().length} CPUs (${os.cpus()[0].model}); ${new Date().toISOString().slice(0, 10)}`);
const rows = [];
const pairs = [['WebGPU', 'ours webgpu', 'webgpu'], ['CPU', 'ours cpu', 'wasm']].filter(([, mine]) => backends.includes(mine.slice(5)));
for (const [what, mine, their] of pairs) {
  const o = results[mine] || {}, t = theirs[their] || {};
  const ms = median(o.k1 || []);
  rows.push([what, o.error ? `error: ${o.error}` : fmt(o.firstMs), fmt(ms), rate(ms), fmt(median(o.k8 || [])),
    t.error ? `error: ${t.error.slice(0, 60)}` : fmt(t.firstMs), fmt(t.stepMs), rate(t.stepMs), t.label || '-',
    ms && t.stepMs ? `${(t.stepMs / ms).toFixed(2)}x` : '-']);
}
console.log(table(rows, ['backend', 'ours: first step', 'ours: s/step', 'ours: steps/s', 'ours: s/step, k=8', 'TF.js: first step', 'TF.js: s/step', 'TF.js: steps/s', 'TF.js backend', 'speed-up']));
console.log('(s/step: median warm step with a loss readback after each, as TF.js; k=8: a readback every 8 steps; speed-up: TF.js s/step / ours)');
const best = (xs) => Math.min(...xs.filter((x) => x > 0));
const oursBest = best(Object.values(results).map((r) => median(r.k1 || [])));
const theirsBest = best(Object.values(theirs).map((r) => r.stepMs || 0));
if (Number.isFinite(oursBest) && Number.isFinite(theirsBest)) {
  console.log(`fastest backend in this browser: ours ${fmt(oursBest)}/step, TF.js ${fmt(theirsBest)}/step: ${(theirsBest / oursBest).toFixed(2)}x`);
}
if (page) {
  console.log(page.error ? `page responsiveness: error ${page.error}`
    : `page while training (16x16x3, batch 8, WebGPU): ${page.count} long tasks (> 50 ms) on the main thread in ${page.seconds} s, longest ${page.maxMs.toFixed(0)} ms, ${page.steps} steps drawn`);
}
// Native: the CLI trains the reference DCGAN (recipe `reference`) and reports its steps/s, which
// count the first (compiling) step and a readback every 10 steps.
let native = null;
if (opt.native) {
  const steps = Math.max(opt.steps, 3);
  const run = spawnSync(opt.native, ['train', '--builtin', 'shapes', '--recipe', 'reference', '--batch', String(opt.batch),
    '--steps', String(steps), '-o', path.join(os.tmpdir(), 'gan-bench.safetensors')], { encoding: 'utf8' });
  const m = (run.stderr || '').match(/(\d+) steps in ([\d.]+) s \(([\d.]+) steps\/s\)/);
  const device = ((run.stderr || '').match(/^(training device|no usable GPU)[^\n]*/im) || ['CPU (Flex)'])[0];
  native = m ? { steps: Number(m[1]), seconds: Number(m[2]), stepsPerSec: Number(m[3]), device } : { error: (run.stderr || run.error || '').toString().slice(-300) };
  console.log(native.error ? `native CLI: error ${native.error}` : `native CLI (${opt.native}; ${device}): ${native.steps} steps in ${native.seconds} s, ${native.stepsPerSec} steps/s (first step included)`);
}
fs.mkdirSync(path.join(ROOT, 'target/bench'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'target/bench/latest.json'), JSON.stringify({ date: new Date().toISOString(), opt, ours: results, tfjs: theirs, page, native }, null, 1));
