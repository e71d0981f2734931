import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from '@upstash/redis';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { chromiumMissing, launchChromium } from '../support/chromium.js';

/**
 * The core entry in a real browser: `src/index.ts` bundled for the browser (esbuild, ESM), served
 * by a local page, loaded in headless Chromium, talking to a local cluster through the
 * gateways' CORS (the page's origin is another port, so every request is cross-origin), and
 * failing over when the active member is killed.
 *
 * Needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`); without it
 * this suite fails, on purpose: a browser build nobody runs is not tested.
 */
const ENTRY = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

let server: Server;
let origin: string;
let cluster: LocalCluster;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>redis-edge-failover browser test</title>
<script type="module">
  import * as lib from '/lib.js';
  window.lib = lib;
  window.libReady = true;
</script>`;

/**
 * Set when Chromium is missing. Every test then fails with this message: failing in `beforeAll`
 * would report the tests as skipped, and a skipped browser test looks like a passing one.
 */
let missingBrowser: string | undefined;

function requireBrowser(): void {
  if (missingBrowser) throw new Error(missingBrowser);
}

beforeAll(async () => {
  missingBrowser = chromiumMissing();
  if (missingBrowser) return;
  const bundle = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.text;

  server = createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    } else if (req.url === '/lib.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  cluster = await startLocalCluster({ members: 2, gateway: { corsOrigins: [origin] } });

  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => (window as unknown as { libReady?: boolean }).libReady === true);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

function plainOn(name: string): Redis {
  const m = cluster.members.find((x) => x.name === name)!;
  return new Redis({ url: m.url, token: m.token, enableAutoPipelining: false });
}

describe('core entry in headless Chromium', () => {
  it('runs commands, a pipeline and a transaction through the gateway CORS', async () => {
    requireBrowser();
    const members = cluster.members;
    const result = await page.evaluate(async (members) => {
      // biome-ignore lint/suspicious/noExplicitAny: the page's global, set by the module script
      const lib = (window as any).lib;
      const switches: unknown[] = [];
      const client = lib.createFailoverRedis({
        members,
        timeoutMs: 1000,
        gracePeriodMs: 60_000,
        on: { switch: (e: unknown) => switches.push(e) },
      });
      // biome-ignore lint/suspicious/noExplicitAny: kept for the next test
      (window as any).client = client;
      // biome-ignore lint/suspicious/noExplicitAny: kept for the next test
      (window as any).switches = switches;
      const set = await client.set('browser:key', 'from-page');
      const get = await client.get('browser:key');
      const incr = await client.incr('browser:counter');
      const pipeline = await client.pipeline().set('browser:p', 1).get('browser:p').exec();
      const multi = await client.multi().incr('browser:m').incr('browser:m').exec();
      return {
        set,
        get,
        incr,
        pipeline,
        multi,
        active: client.activeMember(),
        isFailoverRedis: client instanceof lib.FailoverRedis,
        userAgent: navigator.userAgent,
      };
    }, members);
    expect(result.userAgent).toMatch(/Chrome/);
    expect(result.isFailoverRedis).toBe(true);
    expect(result).toMatchObject({
      set: 'OK',
      get: 'from-page',
      incr: 1,
      pipeline: ['OK', 1],
      multi: [1, 2],
      active: 'a',
    });
    // The writes really went to member a, over the wire.
    expect(await plainOn('a').get('browser:key')).toBe('from-page');
    expect(pageErrors).toEqual([]);
  });

  it('keeps serving reads (and retry-safe writes) after the active member is killed', async () => {
    requireBrowser();
    for (const name of ['a', 'b']) await plainOn(name).set('browser:read', `on-${name}`);
    const before = await page.evaluate(async () => {
      // biome-ignore lint/suspicious/noExplicitAny: set by the previous test
      return (window as any).client.get('browser:read');
    });
    expect(before).toBe('on-a');

    await cluster.kill('a');

    const after = await page.evaluate(async () => {
      // biome-ignore lint/suspicious/noExplicitAny: set by the previous test
      const w = window as any;
      const reads: unknown[] = [];
      const errors: string[] = [];
      for (let i = 0; i < 10; i++) {
        try {
          reads.push(await w.client.get('browser:read'));
        } catch (error) {
          errors.push(String(error));
        }
      }
      let set: unknown;
      try {
        set = await w.client.set('browser:after', 'written-after-kill');
      } catch (error) {
        errors.push(String(error));
      }
      return { reads, errors, set, active: w.client.activeMember(), switches: w.switches };
    });
    expect(after.errors).toEqual([]);
    expect(after.reads).toEqual(new Array(10).fill('on-b'));
    expect(after.set).toBe('OK');
    expect(after.active).toBe('b');
    // Whichever noticed first: failing requests (circuit) or the background PING (health-check).
    expect(after.switches).toEqual([
      expect.objectContaining({
        from: 'a',
        to: 'b',
        reason: expect.stringMatching(/^(circuit|health-check)$/),
      }),
    ]);
    expect(await plainOn('b').get('browser:after')).toBe('written-after-kill');
    expect(pageErrors).toEqual([]);
  });
});
