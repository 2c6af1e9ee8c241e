#!/usr/bin/env node
// Launcher for `npx aipg`: runs the TypeScript entry through tsx in this same process, so signals
// (Ctrl-C) reach the CLI directly and nothing is left running behind a wrapper.
import { register } from 'tsx/esm/api';

register();
await import('../src/bin/aipg.ts');
