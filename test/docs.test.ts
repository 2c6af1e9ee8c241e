import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { JobErrorCode } from '@aipg/core';
import { errorCodes } from '@aipg/gateway';
import { networkErrorCodes } from '@aipg/indexer';
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
