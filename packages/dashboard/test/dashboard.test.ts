import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { announceAuditConfig, getGridParams } from '@aipg/chain';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { roles } from '../../gateway/test/helpers/grid.ts';
import type { AttestationList } from '../app/api.ts';
import { formatAipg, formatDateTime, imageFeeWei, shortAddress } from '../app/format.ts';
import { IMAGE_MODEL, type Stack, startStack } from './stack.ts';

/**
 * The dashboard in real Chromium (Debian's `/usr/bin/chromium` through playwright-core) against a
 * running network: anvil + Grid, a gateway with the network feature and the confidential tier (a test
 * root), two worker nodes (A in a simulated TEE it trusts, B in one it does not). Screenshots of every
 * page in both themes go to /tmp/dashboard-<page>-<theme>.png.
 */

// Browser globals used inside `page.evaluate` callbacks (this file is type-checked as Node code).
declare const document: { documentElement: { dataset: Record<string, string | undefined> } };
declare const localStorage: { getItem(key: string): string | null };
declare const window: { __noReload?: boolean };

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const DIST = fileURLToPath(new URL('../dist/index.html', import.meta.url));

let stack: Stack;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
/** Every `/v1/network/*` JSON body the page received (the live stream aside). */
const apiBodies: { url: string; body: Promise<string> }[] = [];

beforeAll(async () => {
  if (!existsSync(DIST)) {
    // `npm run build` builds the dashboard; a test run straight after a checkout builds it here.
    const { build } = await import('vite');
    await build({
      configFile: fileURLToPath(new URL('../vite.config.ts', import.meta.url)),
      logLevel: 'warn',
    });
  }
  stack = await startStack();
  for (let i = 0; i < 3; i++) await stack.chat(`warm-up ${i}`);
  await stack.settle();
  await stack.index();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.url().includes('/v1/network/') && !r.url().includes('/events/stream'))
      apiBodies.push({ url: r.url(), body: r.text().catch(() => '') });
  });
}, 180_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await stack?.stop();
});

async function open(hash: string) {
  await page.goto(`${stack.url}/${hash}`);
  await page.locator('[data-testid="live-status"]', { hasText: 'Live' }).waitFor();
  // A marker that a reload would wipe: the page must update in place.
  await page.evaluate(() => {
    window.__noReload = true;
  });
}

/**
 * Holds a live stream open from the test until `close()`: the gateway's feed then keeps its position,
 * and `ready` resolves once it has polled (its first `status` event), so a page connecting after that
 * is streamed every job that completes after it connected.
 */
async function holdStream() {
  const controller = new AbortController();
  const res = await fetch(`${stack.url}/v1/network/events/stream`, { signal: controller.signal });
  const reader = res.body!.getReader();
  const ready = (async () => {
    const decoder = new TextDecoder();
    let seen = '';
    while (!/^event: status$/m.test(seen)) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error('the live stream closed');
      seen += decoder.decode(chunk.value, { stream: true });
    }
  })();
  return { ready, close: () => controller.abort() };
}

async function notReloaded() {
  return page.evaluate(() => window.__noReload === true);
}

async function text(selector: string): Promise<string> {
  return ((await page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

async function theme(): Promise<string | undefined> {
  return page.evaluate(() => document.documentElement.dataset.theme);
}

/** Full-page screenshots in both themes, switched with the page's own toggle. */
async function screenshots(name: string) {
  for (const t of ['light', 'dark'] as const) {
    if ((await theme()) !== t) await page.click('[data-testid="theme-toggle"]');
    await page.waitForFunction((want) => document.documentElement.dataset.theme === want, t);
    await page.screenshot({ path: `/tmp/dashboard-${name}-${t}.png`, fullPage: true });
  }
}

describe('dashboard in Chromium', () => {
  test('the network page renders the live rate card and real numbers', async () => {
    await open('#/');
    const row = '[data-testid="model-tiny-test"]';
    await page.locator(row).waitFor();
    expect(await text(`${row} [data-col="input"]`)).toBe('1 AIPG');
    expect(await text(`${row} [data-col="output"]`)).toBe('2 AIPG');
    expect(await text(`${row} [data-col="workers"]`)).toMatch(/^2\b/);
    expect(await text('[data-testid="rate-card"] thead')).toContain('Confidential +25%');
    expect(await text('[data-testid="stat-workers-online"] .stat-value')).toBe('2');
    expect(await text('[data-testid="stat-stake"]')).toContain('15,000 AIPG');
    expect(await text('[data-testid="stat-jobs"] .stat-value')).toBe('3');
    const summary = (await (await fetch(`${stack.url}/v1/network/summary`)).json()) as {
      settlement: { total: { display: string } };
    };
    expect(await text('[data-testid="stat-settled"]')).toContain(`${summary.settlement.total.display} AIPG`);
    await page.locator('.chart svg').first().waitFor();
    expect(await page.locator('.chart svg path[stroke]').count()).toBeGreaterThan(0);

    // The system's theme is followed until the user picks one with the toggle, which is remembered.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
    await page.click('[data-testid="theme-toggle"]');
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    expect(await page.evaluate(() => localStorage.getItem('aipg-theme'))).toBe('dark');
    await page.reload();
    await page.locator(row).waitFor();
    expect(await theme()).toBe('dark');
    await screenshots('network');
  });

  test('a job run during the test changes the network page without a reload', async () => {
    await open('#/');
    await page.locator('[data-testid="stat-jobs"]').waitFor();
    const jobsBefore = Number((await text('[data-testid="stat-jobs"] .stat-value')).replace(/,/g, ''));
    const totalBefore = await text('[data-testid="model-tiny-test"] [data-col="jpm"] .small');
    await stack.chat('one more');
    await expect
      .poll(async () => Number((await text('[data-testid="stat-jobs"] .stat-value')).replace(/,/g, '')), {
        timeout: 10_000,
      })
      .toBe(jobsBefore + 1);
    await expect
      .poll(() => text('[data-testid="model-tiny-test"] [data-col="jpm"] .small'), { timeout: 10_000 })
      .not.toBe(totalBefore);
    expect(await notReloaded()).toBe(true);
  });

  test('jobs and a settled batch appear in the activity feed live', async () => {
    await open('#/activity');
    await page.locator('[data-testid="activity-list"]').waitFor();
    const batchesBefore = await page.locator('li[data-type="batch_settled"]').count();
    const jobsBefore = await page.locator('li[data-type="job_completed"]').count();
    await stack.chat('for the feed');
    await page.locator('li[data-type="job_completed"]').nth(jobsBefore).waitFor({ timeout: 10_000 });
    await stack.settle();
    const batch = page.locator('li[data-type="batch_settled"]', {
      hasText: `Batch #${batchesBefore + 1} settled`,
    });
    await batch.waitFor({ timeout: 10_000 });
    expect(await batch.textContent()).toMatch(/2 receipts/);
    expect(await notReloaded()).toBe(true);
  });

  test('a slash appears in the activity feed live', async () => {
    await open('#/activity');
    await page.locator('[data-testid="activity-list"]').waitFor();
    await stack.slash(roles.workerB.address, '100');
    const slash = page.locator('li[data-type="bond_slashed"]');
    await slash.waitFor({ timeout: 15_000 });
    expect((await slash.textContent())?.replace(/\s+/g, ' ')).toContain('Worker slashed 100 AIPG');
    expect(await notReloaded()).toBe(true);
    await page.click('.segmented button:has-text("Audits")');
    await page.locator('.empty-title', { hasText: 'No audits yet' }).waitFor();
    await page.click('.segmented button:has-text("All")');
    await page.locator('li[data-type="bond_slashed"]').waitFor();
    await screenshots('activity');
  });

  test('the operator page shows the bond; a bond and an unbond made now change it in place', async () => {
    await open(`#/operator/${roles.workerB.address}`);
    const stake = '[data-testid="worker-stake"]';
    await page.locator(stake).waitFor();
    expect(await text(stake)).toBe('3,900 AIPG');
    expect(await text('[data-testid="worker-bond"]')).toContain('active');
    expect(await text('[data-testid="worker-bond"]')).toMatch(/Slashed\s*100 AIPG/);
    // the Grid has its AuditFacet, so audits are live; none of this operator's jobs was audited yet
    expect(await text('[data-testid="audits"]')).toContain('No audit of this operator yet');
    expect(await text('[data-testid="commands"]')).toContain('aipg unbond worker');

    await stack.increaseWorkerBond(roles.workerB, '500');
    await expect.poll(() => text(stake), { timeout: 10_000 }).toBe('4,400 AIPG');

    await stack.unbondWorker(roles.workerB, '1000');
    await expect.poll(() => text(stake), { timeout: 10_000 }).toBe('3,400 AIPG');
    const countdown = page.locator('[data-testid="worker-bond"] [data-testid="unbond-countdown"]');
    await countdown.waitFor();
    expect(await countdown.textContent()).toMatch(/^\d+(\.\d)? s$/);
    expect(await text('[data-testid="commands"]')).toContain('aipg withdraw worker');
    expect(await text('[data-testid="commands"]')).toContain('aipg unbond worker --cancel');
    expect(await notReloaded()).toBe(true);
    await screenshots('operator');
  });

  test('workers and validators pages show stakes, GPUs, jobs and the audit empty states', async () => {
    await open('#/workers');
    const a = `[data-testid="worker-${roles.workerA.address}"]`;
    const b = `[data-testid="worker-${roles.workerB.address}"]`;
    await page.locator(a).waitFor();
    expect(await text(a)).toContain('NVIDIA GeForce RTX 4090');
    expect(await text(b)).toContain('2× NVIDIA RTX A5000');
    expect(await text(`${a} [data-col="stake"]`)).toBe('1,000 AIPG');
    expect(await text(`${b} [data-col="slashes"]`)).toBe('1 · 100 AIPG');
    const served = (await text(`${a} [data-col="jobs"]`)) + (await text(`${b} [data-col="jobs"]`));
    expect(served).toMatch(/[1-9]/);
    // audits are live but nothing was audited yet: no pass rate, and no "not live" banner
    expect(await text(`${a} [data-col="audits"]`)).toBe('—');
    expect(await text(`${b} [data-col="audits"]`)).toBe('—');
    expect(await text('[data-testid="workers"]')).not.toContain('Audit pass rates appear once validators');
    await screenshots('workers');

    await open('#/validators');
    const v = `[data-testid="validator-${roles.validator.address}"]`;
    await page.locator(v).waitFor();
    expect(await text(`${v} [data-col="stake"]`)).toBe('10,000 AIPG');
    expect(await page.locator('[data-testid="audits-empty"]').count()).toBe(0);
    expect(await text(`${v} [data-col="audits"]`)).toMatch(/^0\b/);
    await screenshots('validators');

    // The audits card: none opened on this stack yet (an audit opens with its first committed vote).
    await page.locator('[data-testid="audits"]').waitFor();
    expect(await text('[data-testid="audits"]')).toContain('No audit has opened yet');

    await page.setViewportSize({ width: 390, height: 844 });
    await open('#/');
    await page.locator('[data-testid="model-tiny-test"]').waitFor();
    await screenshots('network-mobile');
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(pageErrors).toEqual([]);
  });

  test('the network page lists who owns the grid and an announced rule change with its countdown', async () => {
    await open('#/');
    await page.locator('[data-testid="pending-changes"]').waitFor();
    expect(await text('[data-testid="grid-owner"]')).toContain(roles.owner.address.slice(0, 6));
    expect(await text('[data-testid="pending-changes"]')).toContain('No rule change announced');

    const { audit } = await getGridParams(stack.grid.publicClient, { grid: stack.grid.grid });
    const announced = await announceAuditConfig(stack.grid.client(roles.owner.privateKey), {
      grid: stack.grid.grid,
      config: { ...audit, auditRateBps: 2_000 },
    });
    await stack.index();
    const row = `[data-testid="change-${announced.id}"]`;
    await page.locator(row).waitFor();
    expect(await text(row)).toMatch(/^Audit rules audit 20% · k=\d+ quorum \d+ · commit \d+s reveal \d+s/);
    expect(await text(row)).toMatch(/executable in .+ · expires in /);
    expect(await notReloaded()).toBe(true);
    await screenshots('network-pending-changes');
    expect(pageErrors).toEqual([]);
  });

  test('a gateway fault a validator reports on chain shows on the network page and in the feed, live', async () => {
    await open('#/');
    const row = `[data-testid="gateway-${roles.gateway.address}"]`;
    await page.locator(row).waitFor();
    expect(await text(`${row} [data-col="faults"]`)).toBe('none reported');
    expect(await text(`${row} [data-col="settled"]`)).toMatch(/ AIPG\s*\d+ batch(es)? · \d+ receipts$/);
    expect(await text(`${row} [data-col="latest"]`)).toBe('—');

    const reported = await stack.reportGatewayFault('RECEIPT_REQUEST_HASH');
    expect(reported.gateway).toBe(roles.gateway.address);
    const reason = page.locator(`${row} [data-reason="RECEIPT_REQUEST_HASH"]`);
    await reason.waitFor({ timeout: 15_000 });
    expect(await text(`${row} [data-reason="RECEIPT_REQUEST_HASH"]`)).toBe('RECEIPT_REQUEST_HASH ×1');
    expect(await reason.getAttribute('title')).toContain('requestHash');
    expect(await text(`${row} [data-col="faults"]`)).toMatch(/^1 report · 1 receipt · 1 validator/);
    expect(await text(`${row} [data-col="latest"]`)).toMatch(
      new RegExp(
        `^RECEIPT_REQUEST_HASH · .+by ${roles.validator.address.slice(0, 6)}.+ · batch #${reported.batchId} · receipt ${reported.leaf.slice(0, 10)}…`,
      ),
    );
    expect(await text(`${row} .cell-title`)).toContain('faults reported');
    expect(await notReloaded()).toBe(true);
    await screenshots('network-gateways');

    await open('#/activity');
    const item = page.locator('li[data-type="gateway_fault_reported"]');
    await item.waitFor({ timeout: 10_000 });
    const line = ((await item.first().textContent()) ?? '').replace(/\s+/g, ' ');
    expect(line).toContain(`Gateway fault reported: RECEIPT_REQUEST_HASH (batch #${reported.batchId})`);
    expect(line).toContain('served evidence that does not match the receipt');
    await page.click('.segmented button:has-text("Audits")');
    await page.locator('li[data-type="gateway_fault_reported"]').waitFor();
    expect(pageErrors).toEqual([]);
  });

  test('image models on the rate card, their speed and image jobs in the feed, never a prompt or an image', async () => {
    const prompt = 'zebra-unicorn-7f3a9 painting a secret lighthouse';
    const negative = 'negative-quokka-91b2';
    const stream = await holdStream();
    await stream.ready;
    // A fresh page (the last test left the feed filtered to audits), every API answer it gets recorded.
    await page.goto('about:blank');
    apiBodies.length = 0;

    // The feed first: the image job arrives live, as an image job.
    await open('#/activity');
    await page.locator('[data-testid="activity-list"]').waitFor();
    const done = await stack.image({ prompt, negative_prompt: negative, size: '128x64', steps: 6, n: 2 });
    const jobId = done.grid.job_id;
    const fee = imageFeeWei(IMAGE_MODEL.rates.perMegapixelStep, { width: 128, height: 64, steps: 6, n: 2 });
    expect(done.grid.fee_wei).toBe(fee.toString());
    const item = page.locator(`li[data-id="job:${jobId}"]`);
    await item.waitFor({ timeout: 10_000 });
    expect(await item.getAttribute('data-job')).toBe('image');
    expect(await item.getAttribute('data-type')).toBe('job_completed');
    const line = ((await item.textContent()) ?? '').replace(/\s+/g, ' ');
    expect(line).toContain(`Image job completed on ${IMAGE_MODEL.name}`);
    // 128 × 64 × 6 × 2 pixel-steps at 0.01 AIPG per megapixel-step: 0.000983 AIPG.
    expect(formatAipg(fee)).toBe('0.000983');
    expect(line).toContain(`128×64 · 6 steps · 2 images · 0.000983 AIPG · `);
    expect(line).toMatch(/ · [\d.,]+ m?s \([\d.]+ s\/step\) · by /);
    expect(line).toContain(`s/step) · by ${shortAddress(roles.workerA.address)}`);
    expect(await page.locator('[data-testid="activity"] img').count()).toBe(0);
    // Text jobs keep their line.
    expect(await page.locator('li[data-type="job_completed"]:not([data-job])').first().textContent()).toMatch(
      /Job completed on tiny-test.+tokens ·/,
    );
    expect(await notReloaded()).toBe(true);
    await screenshots('activity-images');

    // The rate card: per megapixel-step, a 1024×1024 image at 20 steps, images per minute, seconds per step.
    await open('#/');
    const row = `[data-testid="image-rate-card"] [data-testid="model-${IMAGE_MODEL.name}"]`;
    await page.locator(row).waitFor();
    expect(
      await page.locator(`[data-testid="rate-card"] [data-testid="model-${IMAGE_MODEL.name}"]`).count(),
    ).toBe(0);
    expect(await text(`${row} [data-col="per-mp-step"]`)).toBe('0.01 AIPG');
    // ⌈1024 × 1024 × 20 × 0.01 AIPG / 10⁶⌉ = 0.2097152 AIPG, though the worker offers at most 128×64.
    expect(
      imageFeeWei(IMAGE_MODEL.rates.perMegapixelStep, { width: 1024, height: 1024, steps: 20, n: 1 }),
    ).toBe(209_715_200_000_000_000n);
    expect(await text(`${row} [data-col="example"]`)).toBe('0.2097 AIPG');
    expect(await page.locator(`${row} [data-col="example"] .amount`).getAttribute('title')).toBe(
      '0.2097152 AIPG',
    );
    expect(await text(`${row} [data-col="offered"]`)).toBe('image · 64×64, 128×64 · 1–30 steps · up to 4');
    expect(await text(`${row} [data-col="workers"]`)).toMatch(/^1\b/);
    expect(await text(`${row} [data-col="queue"]`)).toBe('0');
    expect(await text('[data-testid="rate-card"] thead')).toContain('Input / 1M');
    expect(await text('[data-testid="image-rate-card"] thead')).toContain('1024×1024 · 20 steps');
    // 2 images in the last 5 minutes: 0.4 a minute.
    expect(await text(`${row} [data-col="ipm"] .small`)).toBe('2 in 5 min');
    expect(await text(`${row} [data-col="ipm"]`)).toBe('0.42 in 5 min'); // "0.4" then "2 in 5 min"
    expect(await text('[data-testid="stat-images-per-minute"]')).toBe('· 0.4 images/min');
    // Seconds per step: the API's median of total time / (steps × n), as the page shows it.
    const models = (await (await fetch(`${stack.url}/v1/network/models`)).json()) as {
      data: { name: string; image: { latency: { median_seconds_per_step: number } } | null }[];
    };
    const sps = models.data.find((m) => m.name === IMAGE_MODEL.name)!.image!.latency.median_seconds_per_step;
    expect(sps).toBeGreaterThanOrEqual(0.003);
    expect(await text(`${row} [data-col="sps"]`)).toBe(
      `${new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 }).format(sps)} s`,
    );
    await screenshots('network-images');

    // Nothing the page shows or fetched has the prompt, the negative prompt or the images (nor their hashes).
    await open(`#/operator/${roles.workerA.address}`);
    await page.locator('[data-testid="activity-list"]').waitFor();
    await page.locator(`li[data-id="job:${jobId}"]`).waitFor();
    const hashes = done.grid.images.map((i) => i.hash.slice(2));
    expect(hashes).toHaveLength(2);
    const bodies = await Promise.all(apiBodies.map((b) => b.body));
    expect(bodies.length).toBeGreaterThan(5);
    expect(bodies.some((b) => b.includes(jobId))).toBe(true);
    for (const html of [await page.content(), ...bodies]) {
      expect(html).not.toContain('zebra-unicorn');
      expect(html).not.toContain(negative);
      expect(html).not.toContain('/v1/images/files');
      for (const h of hashes) expect(html.toLowerCase()).not.toContain(h);
    }
    await open('#/workers');
    const a = `[data-testid="worker-${roles.workerA.address}"]`;
    await page.locator(`${a} [data-col="images"]`).waitFor();
    expect(await text(`${a} [data-col="images"]`)).toBe('· 2 images');
    expect(await page.content()).not.toContain('zebra-unicorn');
    stream.close();
    expect(pageErrors).toEqual([]);
  });

  test('a gateway without image models (an older one) serves a dashboard that loads as before', async () => {
    // What a gateway from before the image flavour answers: no image model (nor an image job), and
    // none of the fields the image flavour added.
    const added = new Set(['image', 'active_image', 'images', 'images_per_minute']);
    const isImage = (x: unknown) =>
      !!x &&
      typeof x === 'object' &&
      ((x as { kind?: unknown }).kind === 'image' ||
        (x as { details?: { kind?: unknown } }).details?.kind === 'image');
    const strip = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.filter((x) => !isImage(x)).map(strip);
      if (!v || typeof v !== 'object') return v;
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => !added.has(k))
          .map(([k, x]) => [k, strip(x)]),
      );
    };
    const old = async (route: import('playwright-core').Route) => {
      const res = await route.fetch();
      const body = strip(await res.json());
      await route.fulfill({ response: res, json: body });
    };
    await page.route(/\/v1\/network\/(models|summary|workers|activity|stats|operators)/, old);
    try {
      await page.goto('about:blank');
      await open('#/');
      await page.locator('[data-testid="model-tiny-test"]').waitFor();
      expect(await text('[data-testid="model-tiny-test"] [data-col="input"]')).toBe('1 AIPG');
      expect(await page.locator('[data-testid="image-rate-card"]').count()).toBe(0);
      expect(await page.locator('[data-testid="stat-images-per-minute"]').count()).toBe(0);
      expect(await text('[data-testid="rates"] .card-head')).not.toContain('megapixel');
      expect(await text('[data-testid="stat-throughput"]')).toMatch(/tok\/s.*jobs\/min$/);
      await page.locator('.chart svg').first().waitFor();
      await open('#/activity');
      await page.locator('li[data-type="job_completed"]').first().waitFor();
      expect(await page.locator('li[data-job="image"]').count()).toBe(0);
      await open('#/workers');
      await page.locator(`[data-testid="worker-${roles.workerA.address}"]`).waitFor();
      expect(await page.locator('[data-col="images"]').count()).toBe(0);
    } finally {
      await page.unroute(/\/v1\/network\/(models|summary|workers|activity|stats|operators)/, old);
    }
    expect(pageErrors).toEqual([]);
  });

  test('the confidential page: premium, attested capacity per model, each TEE worker, a development root', async () => {
    const api = (await (await fetch(`${stack.url}/v1/attestation?evidence=false`)).json()) as AttestationList;
    const a = api.data.find((w) => w.worker === roles.workerA.address)!;
    const b = api.data.find((w) => w.worker === roles.workerB.address)!;
    expect(a).toMatchObject({ status: 'valid', simulated: true, tcb_status: 'UpToDate' });
    expect(b.status).toBe('invalid');
    expect(b.error).toBeTruthy();

    await open('#/confidential');
    expect(await text('nav.tabs [aria-current="page"]')).toBe('Confidential');
    const rowA = `[data-testid="tee-worker-${roles.workerA.address}"]`;
    const rowB = `[data-testid="tee-worker-${roles.workerB.address}"]`;
    await page.locator(rowA).waitFor();
    // The on-chain premium, as a percentage and in basis points.
    expect(await text('[data-testid="stat-premium"] .stat-value')).toBe('+25%');
    expect(await text('[data-testid="premium-bps"]')).toBe('2,500 bps over the ordinary rate');
    // The stack's gateway trusts a test root: the banner says so and names the anchors file.
    const banner = page.locator('[data-testid="dev-root-banner"]');
    expect(await banner.isVisible()).toBe(true);
    expect(await text('[data-testid="dev-root-banner"]')).toContain('Development trust root');
    expect(await text('[data-testid="dev-root-banner"] code')).toBe(stack.anchorsFile);
    // Attested capacity: worker A alone (valid) counts: its 2 chat slots (the tier runs chat, so its image
    // model is not listed); B's evidence was refused.
    expect(await text('[data-testid="tee-model-tiny-test"] [data-col="capacity"]')).toBe('2 slots');
    expect(await text('[data-testid="tee-model-tiny-test"] [data-col="workers"]')).toBe('1 of 2');
    expect(await page.locator(`[data-testid="tee-model-${IMAGE_MODEL.name}"]`).count()).toBe(0);
    expect(await text('[data-testid="stat-attested"] .stat-value')).toBe('1');
    expect(await text('[data-testid="stat-capacity"] .stat-value')).toBe('2');
    // Worker A: valid, labelled SIMULATED, TCB status, expiry in an hour (relative and absolute).
    expect(await page.locator(`${rowA} [data-col="status"] [data-status="valid"]`).isVisible()).toBe(true);
    expect(await text(`${rowA} [data-col="status"]`)).toBe('✓ valid');
    expect(await page.locator(`${rowA} [data-testid="simulated"]`).isVisible()).toBe(true);
    expect(await text(`${rowA} [data-testid="simulated"]`)).toBe('SIMULATED');
    expect(await text(`${rowA} [data-col="models"]`)).toContain('tiny-test ×2');
    expect(await text(`${rowA} [data-col="tcb"]`)).toBe('UpToDate');
    // The gateway's default maximum age of evidence is an hour.
    const inMinutes = (await text(`${rowA} [data-col="expires"] time`)).match(/^in (\d+) min$/);
    expect(Number(inMinutes?.[1])).toBeGreaterThanOrEqual(50);
    const expiresAt = new Date(a.expires_at! * 1000).toISOString();
    expect(await page.locator(`${rowA} [data-col="expires"] time`).getAttribute('datetime')).toBe(expiresAt);
    expect(await text(`${rowA} [data-col="expires-at"]`)).toBe(formatDateTime(expiresAt));
    expect(await text(`${rowA} [data-col="digest"]`)).toBe(`${a.digest!.slice(0, 10)}…`);
    expect(await page.locator(`${rowA} [data-col="error"]`).count()).toBe(0);
    // Worker B: invalid, in another colour, with the gateway's reason; no verified evidence.
    expect(await text(`${rowB} [data-col="status"] [data-status="invalid"]`)).toBe('✕ invalid');
    expect(await page.locator(`${rowB} .badge-bad`).count()).toBe(1);
    expect(await page.locator(`${rowA} .badge-good`).count()).toBe(1);
    expect(await text(`${rowB} [data-col="error"]`)).toBe(b.error);
    expect(await text(`${rowB} [data-col="tcb"]`)).toBe('—');
    expect(await text(`${rowB} [data-col="expires"]`)).toBe('—');
    expect(await page.locator(`${rowB} [data-testid="simulated"]`).count()).toBe(b.simulated ? 1 : 0);
    expect(await notReloaded()).toBe(true);
    await screenshots('confidential');
    expect(pageErrors).toEqual([]);
  });

  test('the confidential page: no tier (404), no TEE worker, pending and expired workers', async () => {
    const route = /\/v1\/attestation/;
    let answer: (real: AttestationList) => AttestationList = (r) => r;
    const serve = async (r: import('playwright-core').Route) => {
      const res = await r.fetch();
      await r.fulfill({ response: res, json: answer((await res.json()) as AttestationList) });
    };
    const errorsBefore = pageErrors.length;
    try {
      // A gateway without the tier answers 404 in OpenAI's error shape.
      await page.route(route, (r) =>
        r.fulfill({
          status: 404,
          json: {
            error: {
              message: 'this gateway runs no confidential tier',
              type: 'not_found_error',
              param: null,
              code: 'not_found',
            },
          },
        }),
      );
      await page.goto('about:blank');
      await open('#/confidential');
      await page
        .locator('.empty-title', { hasText: 'This gateway does not offer the confidential tier' })
        .waitFor();
      expect(await page.locator('[data-testid="dev-root-banner"]').count()).toBe(0);
      expect(await page.locator('.error-note').count()).toBe(0);
      await page.unrouteAll();

      // The tier with no worker in a TEE connected, under the production roots.
      await page.route(route, serve);
      answer = (r) => ({ ...r, trust_anchors: 'production', data: [] });
      await page.goto('about:blank');
      await open('#/confidential');
      await page.locator('.empty-title', { hasText: 'No worker in a TEE is connected' }).waitFor();
      expect(await text('[data-testid="stat-premium"] .stat-value')).toBe('+25%');
      expect(await text('[data-testid="stat-capacity"] .stat-value')).toBe('0');
      expect(await page.locator('[data-testid="dev-root-banner"]').count()).toBe(0);

      // Worker A's evidence expired, worker B's not verified yet: no attested capacity.
      const past = Math.floor(Date.now() / 1000) - 90;
      answer = (r) => ({
        ...r,
        data: r.data.map((w) =>
          w.worker === roles.workerA.address
            ? { ...w, status: 'expired', expires_at: past }
            : { ...w, status: 'pending', error: null, simulated: true },
        ),
      });
      await page.goto('about:blank');
      await open('#/confidential');
      const rowA = `[data-testid="tee-worker-${roles.workerA.address}"]`;
      const rowB = `[data-testid="tee-worker-${roles.workerB.address}"]`;
      await page.locator(rowA).waitFor();
      expect(await text(`${rowA} [data-col="status"]`)).toBe('⌛ expired');
      expect(await page.locator(`${rowA} .badge-warn`).count()).toBe(1);
      expect(await text(`${rowA} [data-col="expires"] time`)).toBe('1 min ago');
      expect(await text(`${rowB} [data-col="status"]`)).toBe('… pending');
      expect(await page.locator(`${rowB} .badge-info`).count()).toBe(1);
      expect(await page.locator(`${rowB} [data-testid="simulated"]`).isVisible()).toBe(true);
      expect(await text('[data-testid="tee-model-tiny-test"] [data-col="capacity"]')).toBe('0 slots');
      expect(await text('[data-testid="tee-model-tiny-test"] [data-col="workers"]')).toBe('0 of 2');
      expect(await text('[data-testid="stat-attested"] .stat-value')).toBe('0');
      expect(await page.locator('[data-testid="dev-root-banner"]').count()).toBe(1);
    } finally {
      await page.unrouteAll();
    }
    // The only console errors: Chromium's own line for the 404 the first page got.
    expect(pageErrors.slice(errorsBefore).every((e) => /status of 404/.test(e))).toBe(true);
    pageErrors.splice(errorsBefore);
  });
});
