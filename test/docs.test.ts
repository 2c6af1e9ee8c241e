import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { JobErrorCode } from '@aipg/core';
import { DAEMON_ENV, type EnvVar } from '@aipg/daemon';
import { errorCodes } from '@aipg/gateway';
import { ValidatorErrorCode } from '@aipg/validator';
import { WorkerErrorCode } from '@aipg/worker';
import { describe, expect, test } from 'vitest';
import { BackendErrorCode } from '../packages/worker/src/backends/errors.ts';

// The documentation as checks: every error code a client or an operator can meet is documented where
// they look (with the HTTP status the gateway really answers), and nothing cites a document or a file
// that is not in the repository.

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
