import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

// The project's layering as checks (docs/DESIGN.md §2, "Packages and layers"): who may import whom,
// only through public entry points, one way; `core` does no I/O. A new import that breaks a rule fails
// here, naming the file.

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = resolve(ROOT, 'packages');

/** What each package may import of the others (its layer and those below). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  chain: ['core'],
  inference: ['core'],
  diffusion: ['core'],
  tee: ['core'],
  confidential: ['core', 'tee'],
  daemon: ['core', 'chain'],
  indexer: ['core', 'chain'],
  gateway: ['core', 'chain', 'inference', 'tee', 'daemon', 'indexer'],
  worker: ['core', 'chain', 'inference', 'diffusion', 'tee', 'daemon'],
  validator: ['core', 'chain', 'inference', 'diffusion', 'tee', 'daemon', 'indexer'],
  /** The `/v1/network` response types only (`import type`: nothing of the indexer reaches the browser). */
  dashboard: ['indexer'],
  cli: [
    'core',
    'chain',
    'inference',
    'diffusion',
    'tee',
    'confidential',
    'indexer',
    'daemon',
    'gateway',
    'worker',
    'validator',
  ],
};
/** Test code may also start what it tests against (a gateway and workers for the dashboard's browser tests). */
const ALLOWED_IN_TESTS: Record<string, readonly string[]> = {
  dashboard: ['core', 'chain', 'inference', 'tee', 'indexer', 'gateway', 'worker'],
  gateway: ['worker', 'confidential'],
  indexer: ['gateway', 'worker'],
  validator: ['gateway', 'worker'],
  worker: ['gateway'],
};
/** `core` is pure: hashing, encoding, schemas. No file system, network, processes or databases. */
const CORE_MAY_IMPORT = [
  'node:crypto',
  'node:module',
  'viem',
  'viem/accounts',
  'zod',
  '@openzeppelin/merkle-tree',
  'secp256k1',
];

function files(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'generated') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(files(path));
    else if (/\.(ts|tsx)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function specifiers(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s+['"]([^'"]+)['"]/g))
    found.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

const packages = readdirSync(PACKAGES).filter((p) => statSync(join(PACKAGES, p)).isDirectory());
const sourceDirs = (pkg: string) =>
  ['src', 'scripts'].map((d) => join(PACKAGES, pkg, d)).filter((d) => statSync(d, { throwIfNoEntry: false }));
const testDirs = (pkg: string) =>
  ['test'].map((d) => join(PACKAGES, pkg, d)).filter((d) => statSync(d, { throwIfNoEntry: false }));

/**
 * The package a specifier names (`@aipg/x…`, or a relative path into packages/x) and whether it goes
 * through a public door: the entry point, or, from test code, another package's test helpers (its
 * fixtures: a scripted worker, a test grid), never its sources.
 */
function target(from: string, spec: string, inTests: boolean): { pkg: string; entry: boolean } | undefined {
  const scoped = /^@aipg\/([a-z-]+)(\/.*)?$/.exec(spec);
  if (scoped) return { pkg: scoped[1]!, entry: scoped[2] === undefined };
  if (!spec.startsWith('.')) return undefined;
  const rel = relative(PACKAGES, resolve(from, '..', spec)).split('/');
  if (!rel[0] || rel[0] === '..') return undefined;
  const fixture = inTests && rel[1] === 'test' && rel.some((part) => /^helpers(\.ts)?$/.test(part));
  return { pkg: rel[0], entry: fixture };
}

describe('layering', () => {
  test('every package is in the layer table', () => {
    expect(packages.sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  test('a package imports another only through its entry point, and only one of a lower layer', () => {
    const broken: string[] = [];
    for (const pkg of packages) {
      const check = (dirs: string[], allowed: readonly string[], inTests: boolean) => {
        for (const dir of dirs)
          for (const file of files(dir))
            for (const spec of specifiers(file)) {
              const t = target(file, spec, inTests);
              if (!t || t.pkg === pkg) continue;
              const where = `${relative(ROOT, file)} imports ${spec}`;
              if (!allowed.includes(t.pkg)) broken.push(`${where}: ${pkg} may not depend on ${t.pkg}`);
              else if (!t.entry) broken.push(`${where}: only @aipg/${t.pkg}'s entry point is public`);
            }
      };
      check(sourceDirs(pkg), ALLOWED[pkg] ?? [], false);
      check(testDirs(pkg), [...(ALLOWED[pkg] ?? []), ...(ALLOWED_IN_TESTS[pkg] ?? [])], true);
    }
    expect(broken).toEqual([]);
  });

  test('every package another imports is declared in the importer’s package.json', () => {
    const missing: string[] = [];
    for (const pkg of packages) {
      const manifest = JSON.parse(readFileSync(join(PACKAGES, pkg, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      const declared = new Set(Object.keys(manifest.dependencies ?? {}));
      for (const dir of sourceDirs(pkg))
        for (const file of files(dir))
          for (const spec of specifiers(file)) {
            const t = /^@aipg\/([a-z-]+)/.exec(spec);
            if (t && t[1] !== pkg && !declared.has(`@aipg/${t[1]}`))
              missing.push(`${relative(ROOT, file)}: @aipg/${t[1]} is not in packages/${pkg}/package.json`);
          }
    }
    expect([...new Set(missing)]).toEqual([]);
  });

  test('the table is one-way: no package depends on itself through others', () => {
    const visiting = new Set<string>();
    const cycle = (pkg: string, path: string[]): string[] | undefined => {
      if (visiting.has(pkg)) return [...path, pkg];
      visiting.add(pkg);
      for (const dep of ALLOWED[pkg] ?? []) {
        const found = cycle(dep, [...path, pkg]);
        if (found) return found;
      }
      visiting.delete(pkg);
      return undefined;
    };
    for (const pkg of packages) expect(cycle(pkg, []), pkg).toBeUndefined();
  });

  test('the chain is read with typed function names only (viem checks each against the ABI)', () => {
    const untyped: string[] = [];
    for (const pkg of packages.filter((p) => p !== 'chain'))
      for (const dir of sourceDirs(pkg))
        for (const file of files(dir)) {
          const text = readFileSync(file, 'utf8');
          if (/\bfunctionName\s*:\s*string\b/.test(text) || /[{,]\s*functionName\s*[,}]/.test(text))
            untyped.push(relative(ROOT, file));
        }
    expect(untyped).toEqual([]);
  });

  test('the dashboard imports the indexer’s response types only (erased: no node code in the browser bundle)', () => {
    const runtime: string[] = [];
    for (const dir of sourceDirs('dashboard').concat(join(PACKAGES, 'dashboard', 'app')))
      for (const file of files(dir)) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(
          /(?:^|\n)\s*(import|export)\b([^'"`;]*?)\bfrom\s+['"]@aipg\/[^'"]+['"]/g,
        ))
          if (!/^\s*type\b/.test(m[2]!)) runtime.push(`${relative(ROOT, file)}: ${m[0].trim()}`);
      }
    expect(runtime).toEqual([]);
  });

  test('core does no I/O: it imports only hashing, encoding and schema libraries', () => {
    const io: string[] = [];
    for (const file of files(join(PACKAGES, 'core', 'src')))
      for (const spec of specifiers(file))
        if (!spec.startsWith('.') && !CORE_MAY_IMPORT.includes(spec))
          io.push(`${relative(ROOT, file)} imports ${spec}`);
    expect(io).toEqual([]);
  });
});
