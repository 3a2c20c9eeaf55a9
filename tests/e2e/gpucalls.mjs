// Diagnostic (not a test): WebGPU calls per training step of the tiny model on core.html: pipelines,
// bind groups, dispatches and workgroups per kernel, and when each submit finished on the GPU.
// node tests/e2e/gpucalls.mjs [--reference] [--dump (WGSL of the busiest kernels to /tmp/wgsl)]
// [--subgroup=N (pretend the adapter reports subgroup size N)]
import { startServer, launch, requireWebGpu } from './harness.mjs';
const { server, base } = await startServer();
const browser = await launch();
try {
  const core = await browser.newPage();
  const sg = process.argv.find((a) => a.startsWith('--subgroup='));
  if (sg) await core.addInitScript((v) => {
    for (const k of ['subgroupMinSize', 'subgroupMaxSize']) Object.defineProperty(GPUAdapterInfo.prototype, k, { get: () => v });
  }, Number(sg.split('=')[1]));
  await core.addInitScript(() => {
    const c = (window.__gpu = {});
    const wrap = (proto, name) => {
      const f = proto[name];
      proto[name] = function (...a) {
        const t = performance.now();
        const r = f.apply(this, a);
        const e = (c[name] ||= { n: 0, ms: 0 });
        e.n++; e.ms += performance.now() - t;
        return r;
      };
    };
    for (const n of ['createComputePipeline', 'createComputePipelineAsync', 'createShaderModule', 'createBuffer', 'createBindGroup', 'createCommandEncoder'])
      wrap(GPUDevice.prototype, n);
    const sub = GPUQueue.prototype.submit;
    GPUQueue.prototype.submit = function (cbs) {
      const t = performance.now(); const r = sub.call(this, cbs);
      const d = window.__disp || 0; window.__disp = 0;
      this.onSubmittedWorkDone().then(() => (window.__subs ||= []).push({ t: t, done: performance.now(), d }));
      return r;
    }; wrap(GPUQueue.prototype, 'writeBuffer');
    wrap(GPUComputePassEncoder.prototype, 'dispatchWorkgroups');
    wrap(GPUBuffer.prototype, 'mapAsync');
    const sm = GPUDevice.prototype.createShaderModule, cp = GPUDevice.prototype.createComputePipeline;
    let nextId = 0;
    GPUDevice.prototype.createShaderModule = function (d) { const m = sm.call(this, d); m.__code = d.code; return m; };
    GPUDevice.prototype.createComputePipeline = function (d) { const p = cp.call(this, d); p.__id = nextId++; p.__code = d.compute.module.__code; (window.__pipes ||= [])[p.__id] = p.__code; return p; };
    const sp = GPUComputePassEncoder.prototype.setPipeline;
    GPUComputePassEncoder.prototype.setPipeline = function (p) { this.__p = p.__id; return sp.call(this, p); };
    const dw = GPUComputePassEncoder.prototype.dispatchWorkgroups;
    GPUComputePassEncoder.prototype.dispatchWorkgroups = function (x, y = 1, z = 1) {
      window.__disp = (window.__disp || 0) + 1; const w = (window.__wg ||= {}); const k = this.__p; (w[k] ||= { n: 0, wg: 0 }); w[k].n++; w[k].wg += x * y * z;
      return dw.call(this, x, y, z);
    };
  });
  await core.goto(`${base}/tests/e2e/core.html`);
  console.log(await requireWebGpu(core), await core.evaluate(async () => { const a = await navigator.gpu.requestAdapter(); return [a.info.subgroupMinSize, a.info.subgroupMaxSize, a.limits.maxComputeInvocationsPerWorkgroup]; }));
  await core.evaluate(() => window.ganReady);
  await core.evaluate(() => window.gan.init_backend('webgpu'));
  const big = process.argv.includes('--reference');
  const rows = await core.evaluate(async (big) => {
    const cfg = big ? { dataset: 'shapes', imageSize: 32, latent: 100, width: 64, batch: 64, grid: 64 }
      : { dataset: 'shapes', imageSize: 16, latent: 16, width: 8, batch: 8, grid: 16 };
    const s = new window.gan.Session(cfg);
    const out = [];
    for (let i = 0; i < (big ? 3 : 6); i++) {
      const before = JSON.parse(JSON.stringify(window.__gpu));
      const t = performance.now(); (await s.run(1)).free(); const ms = performance.now() - t;
      const d = {};
      for (const [k, v] of Object.entries(window.__gpu)) d[k] = `${v.n - (before[k]?.n || 0)} (${(v.ms - (before[k]?.ms || 0)).toFixed(0)} ms)`;
      out.push({ step: i, ms: ms.toFixed(0), ...d });
    }
    return out;
  }, big);
  for (const r of rows) console.log(JSON.stringify(r));
  const subs = await core.evaluate(() => window.__subs.slice(-60));
  let prev = 0;
  for (const x of subs) { console.log(`submit of ${x.d} dispatches at +${(x.t - (prev || x.t)).toFixed(0)} ms, done ${(x.done - x.t).toFixed(0)} ms later`); prev = x.t; }
  const wg = await core.evaluate(() => Object.entries(window.__wg).map(([k, v]) => ({ k, ...v, code: window.__pipes[k] })));
  wg.sort((a, b) => b.wg - a.wg);
  console.log('total workgroups', wg.reduce((a, b) => a + b.wg, 0), 'dispatches', wg.reduce((a, b) => a + b.n, 0));
  for (const w of wg.slice(0, 12)) {
    const m = w.code.match(/@workgroup_size\(([^)]*)\)/);
    console.log(w.k, 'dispatches', w.n, 'workgroups', w.wg, 'size', m && m[1], w.code.length, 'chars');
  }
  if (process.argv.includes('--dump')) { const fs = await import('node:fs'); fs.mkdirSync('/tmp/wgsl', { recursive: true }); for (const w of wg.slice(0, 12)) fs.writeFileSync(`/tmp/wgsl/${w.k}.wgsl`, w.code); }
} finally { await browser.close(); server.close(); }
