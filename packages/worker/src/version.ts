/** Sent to gateways in `hello` (at most 64 characters). Keep in step with package.json. */
export const WORKER_VERSION = 'aipg-worker/0.1.0';
