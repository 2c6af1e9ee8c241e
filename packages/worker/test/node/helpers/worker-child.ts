/**
 * A real worker process for the signal tests: `node --import tsx worker-child.ts '<flags JSON>'`.
 * It runs the `aipg worker start` body with the deterministic test backend (FAKE_MODEL names it)
 * and exits with the code the command returns.
 */
import { runWorkerStart } from '../../../src/cli.ts';
import { createFakeBackend } from './fake-backend.ts';

const flags = JSON.parse(process.argv[2] ?? '{}');
const backend = createFakeBackend({ name: process.env.FAKE_MODEL ?? 'fake-model', tokenDelayMs: 20 });
const code = await runWorkerStart(flags, { env: process.env, backends: [{ backend, maxConcurrency: 2 }] });
process.exit(code);
