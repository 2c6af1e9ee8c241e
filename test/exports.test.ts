import { describe, expect, test } from 'vitest';

// The public API of every package (its entry point): a change is a visible diff in
// test/__snapshots__/exports.test.ts.snap, reviewed like code. Types are not listed: they erase.
// The dashboard has no entry point (it is a web app, built to static files the gateway serves).

const entries = {
  '@aipg/core': () => import('@aipg/core'),
  '@aipg/chain': () => import('@aipg/chain'),
  '@aipg/inference': () => import('@aipg/inference'),
  '@aipg/diffusion': () => import('@aipg/diffusion'),
  '@aipg/tee': () => import('@aipg/tee'),
  '@aipg/confidential': () => import('@aipg/confidential'),
  '@aipg/daemon': () => import('@aipg/daemon'),
  '@aipg/indexer': () => import('@aipg/indexer'),
  '@aipg/gateway': () => import('@aipg/gateway'),
  '@aipg/worker': () => import('@aipg/worker'),
  '@aipg/validator': () => import('@aipg/validator'),
  '@aipg/cli': () => import('@aipg/cli'),
};

describe('exports', () => {
  for (const [name, load] of Object.entries(entries))
    test(name, async () => {
      expect(Object.keys(await load()).sort()).toMatchSnapshot();
    });
});
