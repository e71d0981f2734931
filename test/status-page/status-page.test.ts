import { mkdirSync, writeFileSync } from 'node:fs';
import type { Miniflare } from 'miniflare';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { startSampleWorker } from '../../workers/sample/miniflare.js';
import { launchChromium } from '../support/chromium.js';

/**
 * The sample worker's HTML status page in real headless Chromium, served by the worker in
 * real workerd, against real members: it renders every member and follows a failover.
 */
let cluster: LocalCluster;
let mf: Miniflare;
let browser: Browser;
let pageUrl: string;

beforeAll(async () => {
  // Fails (not skips) when Chromium is missing: the first thing it does.
  browser = await launchChromium();
  cluster = await startLocalCluster({ members: 3 });
  mf = await startSampleWorker({
    members: cluster.members,
    listen: true,
    vars: {
      REDIS_TIMEOUT_MS: '500',
      REDIS_GRACE_PERIOD_MS: '60000',
      REDIS_HEALTH_INTERVAL_MS: '300',
    },
  });
  pageUrl = (await mf.ready).href;
});

afterAll(async () => {
  await browser?.close();
  await mf?.dispose();
  await cluster?.stop();
});

describe('status page', () => {
  it('renders every member, then shows the failover after the active member dies', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // Some traffic so the isolate has an active member and health to show.
    for (let i = 0; i < 3; i++) await (await mf.dispatchFetch(`${pageUrl}kv/x`)).arrayBuffer();

    await page.goto(pageUrl);
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 3);
    const rows = await page.locator('#members tr').allInnerTexts();
    for (const name of ['a', 'b', 'c']) expect(rows.some((r) => r.startsWith(name))).toBe(true);
    expect(await page.locator('#active').textContent()).toBe('a');

    const shot = await page.screenshot({ fullPage: true });
    mkdirSync('test-output', { recursive: true });
    writeFileSync('test-output/status-page.png', shot);
    // A blank or broken page compresses to almost nothing; a rendered table does not.
    expect(shot.length).toBeGreaterThan(15_000);
    const box = await page.locator('table').boundingBox();
    expect(box?.height ?? 0).toBeGreaterThan(100);

    await cluster.kill('a');
    for (let i = 0; i < 5; i++) {
      const res = await mf.dispatchFetch(`${pageUrl}kv/x`);
      expect([200, 404]).toContain(res.status);
      await res.arrayBuffer();
    }
    await page.waitForFunction(() => document.getElementById('active')?.textContent === 'b', null, {
      timeout: 10_000,
    });
    const switches = await page.locator('#switches li').allInnerTexts();
    // The circuit (requests failing) or a health refresh (probes failing), whichever saw it first.
    expect(switches.some((s) => s.includes('a → b') && /\((circuit|health-check)\)/.test(s))).toBe(
      true,
    );
    const rowA = (await page.locator('#members tr').allInnerTexts()).find((r) => r.startsWith('a'));
    expect(rowA).toMatch(/unhealthy/);
    writeFileSync(
      'test-output/status-page-after-failover.png',
      await page.screenshot({ fullPage: true }),
    );
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('shows no secret path or query of a member URL, on the page or in /status', async () => {
    // b and c: the test above killed a. The gateway answers a path it does not know with
    // "ERR unknown command 'S3CR3T-PATH', with args beginning with: 'db' ... 'PRIVATE'", so
    // the members' probe errors carry the secret unless the status route takes it out.
    const members = cluster.members
      .filter((m) => m.name !== 'a')
      .map((m) => ({ ...m, url: `${m.url}/s3cr3t-path/db?key=PRIVATE` }));
    const leaky = await startSampleWorker({
      members,
      listen: true,
      availability: false,
      vars: { REDIS_TIMEOUT_MS: '500', REDIS_HEALTH_INTERVAL_MS: '300' },
    });
    try {
      const url = (await leaky.ready).href;
      // The cron probes both members (in the isolate that serves the page).
      const worker = (await leaky.getWorker()) as unknown as {
        scheduled(options: { cron: string }): Promise<{ outcome: string }>;
      };
      expect((await worker.scheduled({ cron: '* * * * *' })).outcome).toBe('ok');
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('#members tr')].filter((tr) =>
            tr.lastElementChild?.textContent?.includes('unknown command'),
          ).length === 2,
        null,
        { timeout: 10_000 },
      );
      const html = await page.content();
      const json = await (await leaky.dispatchFetch(`${url}status`)).text();
      for (const text of [html, json]) {
        expect(text.toLowerCase()).not.toContain('s3cr3t');
        expect(text).not.toContain('PRIVATE');
        expect(text).not.toContain('key=');
      }
      // What the error says is still there, and the URL is down to its origin.
      const status = JSON.parse(json);
      expect(status.key).toMatch(/^redis-edge-failover:health:[0-9a-f]{8}$/);
      expect(status.members.map((m: { url: string }) => m.url)).toEqual(
        members.map((m) => new URL(m.url).origin),
      );
      expect(status.members[0].lastError.message).toMatch(/^ping error: ERR unknown command/);
      await page.close();
    } finally {
      await leaky.dispose();
    }
  });
});
