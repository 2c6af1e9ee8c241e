import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { JobErrorCode, WORKER_CONNECT_PATH } from '@aipg/core';
import { DAEMON_ENV, type EnvVar } from '@aipg/daemon';
import { errorCodes } from '@aipg/gateway';
import { networkErrorCodes } from '@aipg/indexer';
import { ValidatorErrorCode } from '@aipg/validator';
import { WorkerErrorCode } from '@aipg/worker';
import { describe, expect, test } from 'vitest';
import { BackendErrorCode } from '../packages/worker/src/backends/errors.ts';

// The documentation as checks: every error code a client or an operator can meet is documented where
// they look (with the HTTP status the gateway really answers), every route the gateway serves is in the
// API reference (docs/api.md), and nothing cites a document, a file or a heading that is not in the
// repository.

const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function files(dir: string, ending: RegExp): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (['node_modules', 'dist', 'generated', '.git', 'out', 'cache', 'lib', '.aipg'].includes(name))
      continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(files(path, ending));
    else if (ending.test(name)) out.push(path);
  }
  return out;
}

describe('error codes are documented', () => {
  test('every API error code is in the gateway README’s table, with the status it answers', () => {
    const readme = read('packages/gateway/README.md');
    const rows = new Map(
      [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const),
    );
    const wrong = Object.entries(errorCodes)
      .filter(([code, { status }]) => rows.get(code) !== status)
      .map(([code, { status }]) => `${code}: answers ${status}, documented ${rows.get(code) ?? 'nowhere'}`);
    expect(wrong).toEqual([]);
    expect([...rows.keys()].filter((code) => !(code in errorCodes))).toEqual([]);
  });

  test('the network API (mounted by the gateway) answers its codes with the gateway’s statuses', () => {
    const differ = Object.entries(networkErrorCodes)
      .filter(([code, e]) => {
        const g = errorCodes[code as keyof typeof errorCodes] as { status: number; type: string } | undefined;
        return g?.status !== e.status || g.type !== e.type;
      })
      .map(([code]) => code);
    expect(differ).toEqual([]);
  });

  test('worker and job-error codes are in the worker README, backend codes in the backends README, validator codes in theirs', () => {
    const worker = read('packages/worker/README.md');
    const backends = read('packages/worker/src/backends/README.md');
    const validator = read('packages/validator/README.md');
    const lacking = (doc: string, text: string, codes: readonly string[]) =>
      codes.filter((code) => !text.includes(`\`${code}\``)).map((code) => `${doc} lacks ${code}`);
    const missing = [
      ...lacking('packages/worker/README.md', worker, [
        ...Object.values(WorkerErrorCode),
        ...Object.values(JobErrorCode),
      ]),
      ...lacking('packages/worker/src/backends/README.md', backends, Object.values(BackendErrorCode)),
      ...lacking('packages/validator/README.md', validator, Object.values(ValidatorErrorCode)),
    ];
    expect([...new Set(missing)]).toEqual([]);
  });
});

/** A source text without its comment lines (a route in a doc comment is not a route). */
function code(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line))
    .join('\n');
}

/**
 * Every HTTP route the packages register on a Hono app, as `METHOD /path` with `{param}` for Hono's
 * `:param` / `:param{regex}`. A sub-app's routes get the prefix it is mounted at: `x.route('/v1/network',
 * network.router)` is followed from `router` to the factory whose app it is (`const router =
 * createNetworkRoutes(…)` or `router: createNetworkRoutes(…)`), and from that factory to the file that
 * declares it. Routes of a file no mount resolves to are taken as the root app's, so a sub-app mounted in a
 * way this does not follow shows up as undocumented rather than passing unseen.
 */
function registeredRoutes(): string[] {
  const sources = files(join(ROOT, 'packages'), /\.ts$/)
    .filter((f) => /\/src\//.test(f) && !f.includes(`${join('packages', 'dashboard')}`))
    .map((f) => ({ file: f, text: code(readFileSync(f, 'utf8')) }));
  const all = sources.map((s) => s.text).join('\n');
  const honoFiles = sources.filter((s) => /from 'hono'/.test(s.text));
  const declaring = (fn: string) => honoFiles.find((s) => new RegExp(`function ${fn}\\b`).test(s.text));
  const prefixes = new Map<string, string[]>();
  for (const m of all.matchAll(/\.route\(\s*['"`]([^'"`]*)['"`]\s*,\s*([\w.]+)/g)) {
    const name = m[2]!.split('.').at(-1)!;
    const factory =
      declaring(name) !== undefined
        ? name
        : new RegExp(`\\b(?:(?:const|let)\\s+${name}\\s*=|${name}\\s*:)\\s*(\\w+)\\(`).exec(all)?.[1];
    const target = factory === undefined ? undefined : declaring(factory);
    if (target === undefined) throw new Error(`cannot tell which app \`.route('${m[1]}', ${m[2]})\` mounts`);
    prefixes.set(target.file, [...(prefixes.get(target.file) ?? []), m[1]!.replace(/\/$/, '')]);
  }
  const routes = new Set<string>();
  for (const { file, text } of honoFiles)
    for (const m of text.matchAll(/\b\w+\.(get|post|put|delete|patch)\(\s*(['"`])(\/[^'"`]*)\2/g))
      for (const prefix of prefixes.get(file) ?? ['']) {
        const path = `${prefix}${m[3] === '/' && prefix !== '' ? '' : m[3]}`.replace(
          /:(\w+)(\{[^}]*\})?/g,
          '{$1}',
        );
        routes.add(`${m[1]!.toUpperCase()} ${path}`);
      }
  return [...routes].sort();
}

describe('the API reference', () => {
  test('every route the gateway registers is in docs/api.md, as `METHOD /path`', () => {
    const doc = read('docs/api.md');
    const routes = registeredRoutes();
    // The parser must keep finding the routes it knows of, or the check below checks nothing.
    expect(routes).toEqual(
      expect.arrayContaining([
        'POST /v1/chat/completions',
        'GET /v1/jobs/{id}',
        'POST /v1/audit/score',
        'GET /v1/network/summary',
        'GET /',
      ]),
    );
    const documented = (route: string) =>
      new RegExp(`\`${route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\`?\\s]`).test(doc);
    expect(routes.filter((r) => !documented(r))).toEqual([]);
  });

  test('the worker WebSocket is in docs/api.md', () => {
    expect(read('docs/api.md')).toContain(`\`WS ${WORKER_CONNECT_PATH}\``);
  });
});

describe('nothing cites what is not in the repository', () => {
  const sources = [
    ...files(join(ROOT, 'packages'), /\.(ts|tsx|md|sol)$/),
    ...files(join(ROOT, 'docs'), /\.md$/),
    ...files(join(ROOT, 'contracts', 'src'), /\.sol$/),
    ...files(join(ROOT, 'bench'), /\.ts$/),
    join(ROOT, 'README.md'),
  ];

  test('no file cites the design notes outside the repository (../shared)', () => {
    const outside = sources
      .filter((f) =>
        /(\.\.\/shared|\bshared\/(DESIGN|STACK|STYLE|research|reference))/.test(readFileSync(f, 'utf8')),
      )
      .map((f) => relative(ROOT, f));
    expect(outside).toEqual([]);
  });

  test('every docs/… file a source or README names exists', () => {
    const broken: string[] = [];
    for (const f of sources)
      for (const m of readFileSync(f, 'utf8').matchAll(/\bdocs\/([A-Za-z0-9._-]+\.md)/g))
        if (!existsSync(join(ROOT, 'docs', m[1]!))) broken.push(`${relative(ROOT, f)} names docs/${m[1]}`);
    expect(broken).toEqual([]);
  });

  test('every relative link of a Markdown file points at a file that exists', () => {
    const broken: string[] = [];
    for (const f of sources.filter((s) => s.endsWith('.md')))
      for (const m of readFileSync(f, 'utf8').matchAll(/\]\((?!https?:|mailto:|#)([^)#\s]+)(#[^)]*)?\)/g))
        if (!existsSync(resolve(dirname(f), m[1]!))) broken.push(`${relative(ROOT, f)} links ${m[1]}`);
    expect(broken).toEqual([]);
  });

  test('every #anchor a Markdown link names is a heading of the file it points at', () => {
    // GitHub's heading ids: lowercase, punctuation dropped, spaces to hyphens, repeats numbered.
    const anchors = (file: string) => {
      const seen = new Map<string, number>();
      const ids = new Set<string>();
      const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
      for (const [, heading] of text.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
        const id = heading!
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, '')
          .replace(/\s/g, '-');
        const n = seen.get(id) ?? 0;
        seen.set(id, n + 1);
        ids.add(n === 0 ? id : `${id}-${n}`);
      }
      return ids;
    };
    const broken: string[] = [];
    for (const f of sources.filter((s) => s.endsWith('.md')))
      for (const m of readFileSync(f, 'utf8').matchAll(/\]\((?!https?:|mailto:)([^)#\s]*)#([^)\s]+)\)/g)) {
        const target = m[1] ? resolve(dirname(f), m[1]) : f;
        if (target.endsWith('.md') && existsSync(target) && !anchors(target).has(m[2]!))
          broken.push(`${relative(ROOT, f)} links ${m[1]}#${m[2]}`);
      }
    expect(broken).toEqual([]);
  });
});

describe('the operators’ guides', () => {
  test('every environment variable the daemons read is in docs/operators/environment.md, and nothing else', () => {
    const doc = read('docs/operators/environment.md');
    const rows = new Map(
      [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|(.*)\|$/gm)].map((m) => [m[1]!, m[2]!] as const),
    );
    const problems: string[] = [];
    for (const v of Object.values(DAEMON_ENV) as EnvVar[]) {
      const row = rows.get(v.name);
      if (row === undefined) {
        problems.push(`${v.name} has no row`);
        continue;
      }
      const marks = row
        .split('|')
        .slice(0, 3)
        .map((c) => c.trim() === '✓');
      const expected = (['gateway', 'worker', 'validator'] as const).map((d) => v.daemons.includes(d));
      if (marks.join() !== expected.join())
        problems.push(`${v.name}: the ✓ columns are not ${v.daemons.join(', ')}`);
      for (const old of v.deprecated ?? [])
        if (!row.includes(`\`${old}\``))
          problems.push(`${v.name}: its earlier name ${old} is not in its row`);
    }
    const known = new Set((Object.values(DAEMON_ENV) as EnvVar[]).map((v) => v.name));
    for (const name of rows.keys())
      if (!known.has(name)) problems.push(`${name} is documented but no daemon reads it`);
    expect(problems).toEqual([]);
  });

  test('each role guide links the shared reference', () => {
    for (const role of ['worker', 'validator', 'gateway'])
      expect(read(`docs/operators/${role}.md`)).toContain('](environment.md');
  });
});
