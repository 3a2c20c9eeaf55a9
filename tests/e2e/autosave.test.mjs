// Never lose work, end to end in headless Chromium with a persistent profile: autosave and
// resume after a reload with identical weights, 20 kills during saving that all reload a valid
// checkpoint, recovery from a lost GPU device and from a panic, rollback on divergence, a full
// storage quota, and the CPU fallback in a browser launched without WebGPU.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startServer, launch, launchPersistent, watchErrors, requireWebGpu, ROOT } from './harness.mjs';

// SIGKILL for every process of the Chromium using profile `dir` (a crash or power cut, for it).
function killProfile(dir) {
  const ps = execSync('ps -eo pid=,args=').toString().split('\n');
  for (const line of ps) {
    const [pid, ...args] = line.trim().split(' ');
    if (args.join(' ').includes(`--user-data-dir=${dir}`)) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
  }
}

const TINY = 'dataset=shapes&imageSize=16&batch=8&width=8&latent=16&seed=3&qualityEvery=100000';
let server, base, dir, context, page, errors;

before(async () => {
  ({ server, base } = await startServer());
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gan-profile-'));
  context = await launchPersistent(dir);
  page = context.pages()[0] || await context.newPage();
  errors = watchErrors(page);
});

after(async () => {
  await context?.close().catch(() => {});
  server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const stepOf = (p) => p.evaluate(() => Number(document.getElementById('step-count').textContent));
const noticeText = (p) => p.locator('#notice-text').textContent();
async function waitReady(p) {
  await p.waitForFunction(() => !document.getElementById('load').disabled, null, { timeout: 120_000 });
}
async function waitSteps(p, n, timeout = 300_000) {
  await p.waitForFunction((n) => Number(document.getElementById('step-count').textContent) >= n, n, { timeout });
}
async function waitAutosave(p, atLeast) {
  await p.waitForFunction((n) => (window.ganDebug.autosaved() || { step: -1 }).step >= n, atLeast, { timeout: 300_000 });
  return p.evaluate(() => window.ganDebug.autosaved());
}
// The expected console noise of a deliberate crash or device loss.
const deliberate = /crash requested by the self-test|RuntimeError: unreachable|GPU was reset|destroyed|Device|device/i;

test('train, reload, and resume at the last autosave with identical weights', { timeout: 600_000 }, async () => {
  await page.goto(`${base}/www/index.html?${TINY}&autosaveMs=2000`);
  await requireWebGpu(page);
  await waitReady(page);
  assert.equal(await page.locator('#resume-box').isHidden(), true, 'a fresh profile has nothing to resume');
  await page.getByRole('button', { name: 'Train', exact: true }).click();
  await waitAutosave(page, 1);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  // Pause autosaves the step it stopped at.
  const paused = await stepOf(page);
  const saved = await waitAutosave(page, paused);
  assert.equal(saved.step, paused);
  assert.match(await page.locator('#autosave').textContent(), new RegExp(`Autosaved step ${paused} at .* MB in`));
  const curves = await page.evaluate(() => window.ganDebug.curves());
  assert.ok(curves.losses > 0);

  await page.reload();
  await page.waitForSelector('#resume-box:not([hidden])', { timeout: 120_000 });
  assert.match(await page.locator('#resume-text').textContent(), new RegExp(`^Step ${paused} of training on the built-in shapes set at 16 px, saved`));
  const grid = await page.evaluate(() => {
    const c = document.getElementById('resume-grid');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return { w: c.width, spread: Math.max(...d) - Math.min(...d) };
  });
  assert.ok(grid.w > 8 && grid.spread > 50, `the prompt shows the saved samples: ${JSON.stringify(grid)}`);
  await page.screenshot({ path: path.join(ROOT, 'target/e2e/resume-prompt.png') });
  await page.locator('#resume-yes').click();
  await page.waitForFunction(() => (window.ganDebug.autosaved() || {}).resumedDigest !== undefined, null, { timeout: 120_000 });
  const resumed = await page.evaluate(() => window.ganDebug.autosaved());
  assert.equal(resumed.step, paused);
  assert.equal(resumed.resumedDigest, saved.digest, 'the resumed weights, averages and moments are the saved ones');
  assert.equal(await stepOf(page), paused);
  assert.deepEqual(await page.evaluate(() => window.ganDebug.curves()), curves, 'the loss and quality curves come back');
  assert.equal(await page.getByLabel('Batch size (images)').inputValue(), '8', 'settings restored');
  await page.locator('#train').click(); // now labelled "Resume"
  await waitSteps(page, paused + 2);
  assert.deepEqual(errors, []);
});

test('the GPU device lost mid-training: a new worker resumes the last autosave within 10 s', { timeout: 600_000 }, async () => {
  // Training from the previous test goes on; wait for an autosave past the resumed step.
  const before = await stepOf(page);
  const saved = await waitAutosave(page, before + 1);
  const t0 = Date.now();
  await page.evaluate(() => window.ganDebug.loseDevice());
  await page.waitForFunction(() => /GPU was reset.*Resumed from step \d+/.test(document.getElementById('notice-text').textContent), null, { timeout: 60_000 });
  const resumedAfter = (Date.now() - t0) / 1000;
  const step = Number((await noticeText(page)).match(/Resumed from step (\d+)/)[1]);
  assert.ok(step >= saved.step, `resumed at ${step}, last autosave ${saved.step}`);
  await waitSteps(page, step + 1, 60_000);
  const trainingAfter = (Date.now() - t0) / 1000;
  console.log(`device lost -> resumed from step ${step} in ${resumedAfter.toFixed(1)} s, training again after ${trainingAfter.toFixed(1)} s`);
  assert.ok(resumedAfter < 10, `recovery took ${resumedAfter} s`);
  assert.equal(await page.locator('#backend').getAttribute('data-backend'), 'webgpu', 'still on WebGPU');
  errors.length = 0;
});

test('a panic in the core: the worker restarts and training resumes from the last autosave', { timeout: 600_000 }, async () => {
  const saved = await waitAutosave(page, (await stepOf(page)) + 1);
  await page.evaluate(() => window.ganDebug.crash());
  await page.waitForFunction(() => /crashed.*crash requested by the self-test.*Resumed from step \d+/.test(document.getElementById('notice-text').textContent), null, { timeout: 120_000 });
  const step = Number((await noticeText(page)).match(/Resumed from step (\d+)/)[1]);
  assert.ok(step >= saved.step);
  await waitSteps(page, step + 2, 120_000);
  assert.equal(await page.locator('#pause').isEnabled(), true, 'training goes on by itself');
  const unexpected = errors.filter((e) => !deliberate.test(e));
  assert.deepEqual(unexpected, []);
  errors.length = 0;
});

test('divergence rolls back to the last autosave with halved learning rates', { timeout: 600_000 }, async () => {
  const saved = await waitAutosave(page, (await stepOf(page)) + 1);
  const lr = Number(await page.getByLabel('Generator learning rate').inputValue());
  await page.evaluate(() => window.ganDebug.diverge());
  await page.waitForFunction(() => /Training diverged/.test(document.getElementById('notice-text').textContent), null, { timeout: 120_000 });
  const text = await noticeText(page);
  assert.match(text, /^Training diverged \((generator|discriminator) loss became NaN or infinite at step \d+\)\. Rolled back to step \d+ and halved the learning rates \(G 1\.0e-4, D 1\.0e-4\)\.$/);
  const to = Number(text.match(/Rolled back to step (\d+)/)[1]);
  assert.ok(to >= saved.step, `rolled back to ${to}; the last autosave was ${saved.step}`);
  assert.equal(Number(await page.getByLabel('Generator learning rate').inputValue()), lr / 2);
  await waitSteps(page, to + 2, 120_000);
  assert.ok(Number.isFinite(Number(await page.locator('#g-loss').textContent())), 'losses finite again');
  assert.deepEqual(errors, []);
});

test('a full storage quota is a visible warning; training goes on and Download is offered', { timeout: 600_000 }, async () => {
  await page.evaluate(() => window.ganDebug.failQuota());
  await page.waitForSelector('#autosave.failed', { timeout: 120_000 });
  assert.match(await page.locator('#autosave').textContent(), /quota exceeded.*Training goes on; download the model/);
  assert.match(await noticeText(page), /quota exceeded/);
  const at = await stepOf(page);
  await waitSteps(page, at + 2, 120_000);
  assert.equal(await page.getByRole('button', { name: 'Download model' }).isEnabled(), true);
  // The next save works again and says so.
  await page.waitForSelector('#autosave:not(.failed)', { timeout: 120_000 });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await page.screenshot({ path: path.join(ROOT, 'target/e2e/autosave.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('switching to the CPU backend saves the model and resumes it there', { timeout: 600_000 }, async () => {
  await page.waitForFunction(() => document.getElementById('pause').disabled);
  const at = await stepOf(page);
  await page.getByLabel('Backend', { exact: true }).selectOption('cpu');
  await page.waitForFunction(() => document.getElementById('backend').dataset.backend === 'cpu', null, { timeout: 120_000 });
  await page.waitForFunction((n) => new RegExp(`^Resumed the autosave of step ${n} `).test(document.getElementById('autosave').textContent), at, { timeout: 120_000 });
  assert.equal(await stepOf(page), at, 'the same model, on the CPU');
  await page.locator('#train').click();
  await waitSteps(page, at + 2, 120_000);
  assert.deepEqual(errors, []);
  await context.close();
  context = null;
});

test('killed at random points while saving, 20 of 20 relaunches resume a valid checkpoint', { timeout: 900_000 }, async () => {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'gan-kill-'));
  // The CPU backend and a save after every tick: the kills land in and around saves.
  const url = `${base}/www/index.html?${TINY}&backend=cpu&autosaveMs=1&autosaveSteps=1`;
  let resumedOk = 0, lastStep = 0;
  try {
    for (let i = 0; i <= 20; i++) {
      const ctx = await launchPersistent(profile);
      const p = ctx.pages()[0] || await ctx.newPage();
      await p.goto(url);
      await waitReady(p);
      if (i > 0) {
        await p.waitForSelector('#resume-box:not([hidden])', { timeout: 60_000 });
        const prompt = await p.locator('#resume-text').textContent();
        assert.doesNotMatch(prompt, /damaged/, `run ${i}: ${prompt}`);
        await p.locator('#resume-yes').click();
        await p.waitForFunction(() => (window.ganDebug.autosaved() || {}).resumedDigest !== undefined, null, { timeout: 60_000 });
        const r = await p.evaluate(() => window.ganDebug.autosaved());
        assert.equal(r.resumedDigest, r.digest, `run ${i}: resumed state equals its checkpoint`);
        assert.ok(r.step >= lastStep, `run ${i}: resumed step ${r.step}, an earlier run had saved ${lastStep}`);
        resumedOk++;
        if (i === 20) { await ctx.close(); break; }
      }
      await p.locator('#train').click();
      await waitAutosave(p, (await stepOf(p)) + 1);
      lastStep = (await p.evaluate(() => window.ganDebug.autosaved())).step;
      await p.waitForTimeout(Math.floor(Math.random() * 400));
      killProfile(profile);
      await ctx.close().catch(() => {});
    }
  } finally {
    killProfile(profile);
    await fs.rm(profile, { recursive: true, force: true });
  }
  console.log(`killed 20 times while saving every tick; ${resumedOk} of 20 relaunches resumed a valid checkpoint`);
  assert.equal(resumedOk, 20);
});

test('a browser without WebGPU trains on the CPU with a clear notice', { timeout: 300_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const p = await browser.newPage();
    const errs = watchErrors(p);
    await p.goto(`${base}/www/index.html?${TINY}`);
    await p.waitForSelector('#backend[data-backend]', { timeout: 120_000 });
    assert.equal(await p.locator('#backend').getAttribute('data-backend'), 'cpu');
    assert.match(await p.locator('#notice-text').textContent(), /(no WebGPU|no GPU adapter).*CPU/);
    await p.getByRole('button', { name: 'Train', exact: true }).click();
    await waitSteps(p, 3, 240_000);
    assert.ok(Number.isFinite(Number(await p.locator('#g-loss').textContent())));
    assert.deepEqual(errs, []);
  } finally {
    await browser.close();
  }
});
