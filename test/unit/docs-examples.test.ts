import { execFile } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Every ```ts / ```typescript block in README.md and docs/*.md must type-check against the
 * real API, because users copy them. Each block becomes its own file in a scratch project
 * (named after the doc and the fence's line), whose `paths` send `redis-edge-failover` and its
 * subpaths (also as Deno's `npm:` specifiers) to the source entries, so no build is needed.
 *
 * Opt-out: an HTML comment `<!-- not compiled: <reason> -->` on the line before the fence. A
 * reason is required.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const PACKAGE = 'redis-edge-failover';

interface Block {
  /** `docs/serverless.md:96`: the doc and the line of the opening fence. */
  where: string;
  doc: string;
  fenceLine: number;
  code: string;
  file: string;
  optOut?: string;
}

function docs(): string[] {
  const inDocs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...inDocs];
}

function extract(doc: string): Block[] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  let open: { fence: string; indent: number; ts: boolean; line: number; optOut?: string } | null =
    null;
  let body: string[] = [];
  lines.forEach((text, i) => {
    const fence = /^( *)(`{3,}|~{3,})\s*([\w-]*)/.exec(text);
    if (open === null) {
      if (!fence) return;
      const ts = fence[3] === 'ts' || fence[3] === 'typescript';
      const before = lines.slice(0, i).findLast((l) => l.trim() !== '') ?? '';
      const marker = /^\s*<!--\s*not compiled:(.*?)-->\s*$/.exec(before);
      open = { fence: fence[2]!, indent: fence[1]!.length, ts, line: i + 1 };
      if (marker) open.optOut = marker[1]!.trim();
      body = [];
      return;
    }
    if (fence && fence[2]!.startsWith(open.fence) && text.trim() === fence[2]) {
      if (open.ts) {
        const where = `${doc}:${open.line}`;
        const block: Block = {
          where,
          doc,
          fenceLine: open.line,
          code: body.join('\n'),
          file: `${doc.replace(/[/.]/g, '-')}-L${open.line}.ts`,
        };
        if (open.optOut !== undefined) block.optOut = open.optOut;
        blocks.push(block);
      }
      open = null;
      return;
    }
    // A fence inside a list item is indented; its lines are too.
    body.push(text.slice(Math.min(open.indent, text.length - text.trimStart().length)));
  });
  return blocks;
}

const blocks = docs().flatMap(extract);
const compiled = blocks.filter((b) => b.optOut === undefined);

/**
 * Platform APIs the examples use whose packages are not dependencies of this repository
 * (`@vercel/functions`, `next`, `@netlify/edge-functions`, `@types/aws-lambda`, Deno's and
 * Netlify's and Supabase's globals): minimal stand-ins with the platforms' real signatures.
 * Plus the one fragment context: docs/api.md's `createFailoverRedis` example reads its tokens
 * from the `env` of whatever runtime it is in.
 */
const PRELUDE = `
declare module '@vercel/functions' {
  export interface Geo {
    city?: string;
    country?: string;
    flag?: string;
    region?: string;
    countryRegion?: string;
    latitude?: string;
    longitude?: string;
    postalCode?: string;
  }
  export function geolocation(request: { headers: Headers }): Geo;
  export function waitUntil(promise: Promise<unknown>): void;
}
declare module 'next/server' {
  export function after<T>(task: Promise<T> | (() => T | Promise<T>)): void;
}
declare module '@netlify/edge-functions' {
  export interface Context {
    geo: {
      city?: string;
      country?: { code?: string; name?: string };
      subdivision?: { code?: string; name?: string };
      timezone?: string;
      latitude?: number;
      longitude?: number;
    };
    ip: string;
    requestId: string;
    waitUntil(promise: Promise<unknown>): void;
  }
}
declare module 'aws-lambda' {
  export interface APIGatewayProxyEventV2 {
    version: string;
    routeKey: string;
    rawPath: string;
    rawQueryString: string;
    cookies?: string[];
    headers: { [name: string]: string | undefined };
    queryStringParameters?: { [name: string]: string | undefined };
    requestContext: {
      accountId: string;
      apiId: string;
      domainName: string;
      domainPrefix: string;
      http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
      requestId: string;
      routeKey: string;
      stage: string;
      time: string;
      timeEpoch: number;
    };
    body?: string;
    isBase64Encoded: boolean;
  }
  export interface APIGatewayProxyStructuredResultV2 {
    statusCode?: number;
    headers?: { [header: string]: boolean | number | string };
    body?: string;
    isBase64Encoded?: boolean;
    cookies?: string[];
  }
  export type APIGatewayProxyResultV2<T = never> = APIGatewayProxyStructuredResultV2 | string | T;
}
declare namespace Deno {
  interface ServeHandlerInfo {
    remoteAddr: { transport: 'tcp' | 'udp'; hostname: string; port: number };
    completed: Promise<void>;
  }
  type ServeHandler = (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>;
  function serve(handler: ServeHandler): { finished: Promise<void>; shutdown(): Promise<void> };
  const env: {
    get(key: string): string | undefined;
    toObject(): { [key: string]: string };
  };
}
declare const Netlify: {
  env: { get(name: string): string | undefined; toObject(): { [name: string]: string } };
};
declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

declare const env: { TOKEN_EU: string; TOKEN_US: string };
`;

/**
 * Two projects, one tsc each (run in parallel). Both: a strict consumer on a Workers-like
 * runtime (ES2022 + WebWorker libs, with WebWorker.Iterable as DOM.Iterable goes with DOM;
 * exactOptionalPropertyTypes). The edge project has `types: []`, so no Node globals: the
 * examples for workerd, Netlify, Deno and Supabase, and the source entries they import (., ./hono,
 * ./workers, ./serverless), must compile without @types/node, which also catches a Node
 * built-in creeping into an edge entry. The Node project adds `types: ['node']` and takes only
 * the examples that need it: those importing ./gateway or ./testing (Node-only entries built on
 * node:* modules), and those using `process.env` or `Buffer` (AWS Lambda, Vercel and Next
 * functions, whose platforms provide them). Node types for everything would hide exactly the
 * edge incompatibility the first project checks for.
 */
const NODE_ONLY = new RegExp(
  `['"](?:npm:)?${PACKAGE}/(?:gateway|testing)['"]|\\bprocess\\.env\\b|\\bBuffer\\b`,
);

function paths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { default: string }>;
  };
  const out: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    // ./dist/hono/index.js → src/hono/index.ts: the entries package.json publishes, no others.
    const source = join(
      ROOT,
      target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'),
    );
    const name = PACKAGE + subpath.slice(1);
    out[name] = [source];
    out[`npm:${name}`] = [source];
  }
  return out;
}

interface Diagnostic {
  file: string;
  line: number;
  column: number;
  text: string;
}

function parse(output: string): Diagnostic[] {
  const found: Diagnostic[] = [];
  for (const line of output.split('\n')) {
    const m = /^(.+?)\((\d+),(\d+)\): (error TS\d+: .*)$/.exec(line);
    if (m) found.push({ file: m[1]!, line: Number(m[2]), column: Number(m[3]), text: m[4]! });
    else if (line.trim() !== '' && found.length > 0) found.at(-1)!.text += `\n${line}`;
    else if (line.trim() !== '') found.push({ file: '', line: 0, column: 0, text: line });
  }
  return found;
}

function tsc(dir: string, project: string): Promise<Diagnostic[]> {
  return new Promise((resolve) => {
    execFile(
      TSC,
      ['-p', project, '--pretty', 'false'],
      { cwd: dir, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const found = parse(`${stdout}\n${stderr}`);
        if (error && found.length === 0) {
          found.push({ file: '', line: 0, column: 0, text: `tsc failed: ${error.message}` });
        }
        resolve(found);
      },
    );
  });
}

function isSource(file: string): boolean {
  return resolve(dir, file).startsWith(join(ROOT, 'src') + sep);
}

let dir: string;
/** Errors per example file; `''` holds those outside any example (prelude, source, config). */
const errors = new Map<string, string[]>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redis-edge-docs-'));
  // Examples import hono and friends as a user's project would.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'prelude.d.ts'), PRELUDE);
  for (const b of compiled) {
    // A module of its own, so examples do not see each other's top-level names. Appended, so
    // line numbers still match the doc.
    const isModule = /^\s*(import|export)\b/m.test(b.code);
    writeFileSync(join(dir, b.file), isModule ? `${b.code}\n` : `${b.code}\nexport {};\n`);
  }
  const base = {
    strict: true,
    exactOptionalPropertyTypes: true,
    noEmit: true,
    skipLibCheck: true,
    module: 'ESNext',
    moduleResolution: 'bundler',
    target: 'ES2022',
    lib: ['ES2022', 'WebWorker', 'WebWorker.Iterable'],
    paths: paths(),
  };
  const projects = [
    { name: 'tsconfig.edge.json', types: [] as string[], node: false },
    { name: 'tsconfig.node.json', types: ['node'], node: true },
  ];
  const runs = projects.map((p) => {
    const files = compiled.filter((b) => NODE_ONLY.test(b.code) === p.node).map((b) => b.file);
    writeFileSync(
      join(dir, p.name),
      JSON.stringify({
        compilerOptions: { ...base, types: p.types },
        files: ['prelude.d.ts', ...files],
      }),
    );
    return tsc(dir, p.name);
  });
  const byFile = new Map(compiled.map((b) => [join(dir, b.file), b]));
  const byName = new Map(compiled.map((b) => [b.file, b]));
  for (const d of (await Promise.all(runs)).flat()) {
    const block = byName.get(d.file) ?? byFile.get(d.file);
    // The source is written for the repository's own tsconfig (exactOptionalPropertyTypes off;
    // \`npx tsc --noEmit\` checks it there, and test/unit/package.test.ts checks the published
    // declarations under it). Its implementation errors under this option say nothing about the
    // API an example sees; every other source error (a Node global in an edge entry) counts.
    if (!block && isSource(d.file) && d.text.includes('exactOptionalPropertyTypes')) continue;
    // The block's first line is the line after its fence.
    const key = block ? block.file : '';
    const at = block
      ? `${block.doc}:${block.fenceLine + d.line}:${d.column}`
      : `${d.file}(${d.line},${d.column})`;
    errors.set(key, [...(errors.get(key) ?? []), `${at} ${d.text}`]);
  }
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('TypeScript examples in README.md and docs/*.md', () => {
  it('finds the examples, and every opt-out gives its reason', () => {
    expect(compiled.length).toBeGreaterThanOrEqual(15);
    for (const doc of docs())
      expect(
        blocks.some((b) => b.doc === doc),
        doc,
      ).toBe(true);
    expect(
      blocks.filter((b) => b.optOut === '').map((b) => b.where),
      'opt-outs without a reason',
    ).toEqual([]);
  });

  it.each(compiled.map((b) => [b.where, b] as const))('%s compiles', (_where, block) => {
    expect(errors.get(block.file) ?? [], `the example at ${block.where}`).toEqual([]);
  });

  it('compiles without errors outside the examples (prelude, source entries, config)', () => {
    expect(errors.get('') ?? []).toEqual([]);
  });
});
