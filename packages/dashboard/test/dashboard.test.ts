import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { announceAuditConfig, getGridParams } from '@aipg/chain';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { roles } from '../../gateway/test/helpers/grid.ts';
import { type Stack, startStack } from './stack.ts';

/**
 * The dashboard in real Chromium (Debian's `/usr/bin/chromium` through playwright-core) against a
 * running network: anvil + Grid, a gateway with the network feature, two worker nodes. Screenshots
 * of every page in both themes go to /tmp/dashboard-<page>-<theme>.png.
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
});
