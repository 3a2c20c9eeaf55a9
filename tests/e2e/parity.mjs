// Prints WebGPU-vs-Flex parity step by step for one build (not a test; an experiment tool).
//   node tests/e2e/parity.mjs [--pkg=www/pkg-exp] [--subgroups] [--steps=5] [--batch=8] [--size=16] [--width=8]
// Used to study burn's autotune/fusion on WebGPU (README, "WebGPU in Chromium").
import { startServer, launch, requireWebGpu } from './harness.mjs';

const arg = (name, dflt) => (process.argv.find((a) => a.startsWith(`--${name}=`)) || `=${dflt}`).split('=')[1];
const pkg = arg('pkg', 'www/pkg');
const steps = Number(arg('steps', 5));
const settings = { dataset: 'shapes', imageSize: Number(arg('size', 16)), latent: Number(arg('latent', 16)),
  width: Number(arg('width', 8)), batch: Number(arg('batch', 8)), grid: 4, seed: 3 };

const { server, base } = await startServer();
const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.log(`console: ${m.text().slice(0, 300)}`));
  await page.goto(`${base}/tests/e2e/core.html?pkg=${pkg}${process.argv.includes('--subgroups') ? '&subgroups=1' : ''}`);
  await page.evaluate(() => window.ganReady);
  console.log('adapter', JSON.stringify(await requireWebGpu(page)), 'settings', JSON.stringify(settings));
  await page.evaluate(() => window.gan.init_backend('webgpu'));
  const t0 = Date.now();
  const rows = await page.evaluate(([s, n]) => window.gan.parity_check(s, n), [settings, steps]);
  for (const r of rows) {
    console.log(`step ${r.step}: gpu D ${r.lossesGpu[0]} G ${r.lossesGpu[1]} | cpu D ${r.lossesCpu[0]} G ${r.lossesCpu[1]} | max |sample diff| ${r.sampleMaxDiff}`);
  }
  console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s`);
} catch (e) {
  console.log(`failed: ${e.message.slice(0, 600)}`);
} finally {
  await browser.close();
  server.close();
}
