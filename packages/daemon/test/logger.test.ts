import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createDaemonLogger, REDACTED, REDACTED_FIELDS } from '../src/index.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = createDaemonLogger({ service: 'test', level: 'debug', destination });
  return { logger, lines };
}

const KEY = `0x${'ab'.repeat(32)}`;

describe('createDaemonLogger', () => {
  test('JSON lines with the service and level', () => {
    const { logger, lines } = capture();
    logger.info({ jobs: 2 }, 'started');
    logger.debug('details');
    logger.trace('not at debug');
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { service: 'test', level: 30, jobs: 2, msg: 'started' },
      { service: 'test', level: 20, msg: 'details' },
    ]);
  });

  test.each([
    ['a private key', { privateKey: KEY }],
    ['an operator key in an options object', { options: { operatorKey: KEY } }],
    ['a keystore password', { options: { keystorePassword: 'correct horse battery' } }],
    ['a password', { password: 'correct horse battery' }],
    ['an API key', { apiKey: 'sk-live-secretvalue' }],
    [
      'an API key of a model in the options',
      { options: { models: [{ name: 'm', apiKey: 'sk-live-secretvalue' }] } },
    ],
    [
      'a bearer token in a request’s headers',
      { req: { headers: { authorization: 'Bearer sk-live-secretvalue' } } },
    ],
    ['an x-api-key header', { headers: { 'x-api-key': 'sk-live-secretvalue' } }],
    ['a cookie', { req: { headers: { cookie: 'session=secretvalue' } } }],
    ['a token', { token: 'secretvalue-token' }],
    ['an HMAC secret', { keys: { secret: KEY } }],
    ['a prompt', { job: { prompt: 'my secret plans for tomorrow' } }],
    ['chat messages', { request: { messages: [{ role: 'user', content: 'my secret plans for tomorrow' }] } }],
    ['a message content', { content: 'my secret plans for tomorrow' }],
    ['a negative prompt', { negative_prompt: 'my secret plans for tomorrow' }],
  ])('removes %s from the line', (_what, fields) => {
    const { logger, lines } = capture();
    logger.info(fields, 'event');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    for (const secret of [KEY, 'correct horse battery', 'secretvalue', 'my secret plans'])
      expect(line).not.toContain(secret);
    expect(line).toContain(REDACTED);
    expect(JSON.parse(line).msg).toBe('event');
  });

  test('in any case, deeper down, in child loggers’ bindings, without touching the caller’s object', () => {
    const { logger, lines } = capture();
    const request = { headers: { Authorization: 'Bearer sk-live-secretvalue', host: 'gw' } };
    const fields = { ctx: { http: { req: request } }, jobs: [{ id: 1, prompt: 'my secret plans' }] };
    logger.child({ apiKey: 'sk-live-secretvalue', worker: 'w1' }).warn(fields, 'event');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('secretvalue');
    expect(lines[0]).not.toContain('my secret plans');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      worker: 'w1',
      apiKey: REDACTED,
      ctx: { http: { req: { headers: { Authorization: REDACTED, host: 'gw' } } } },
      jobs: [{ id: 1, prompt: REDACTED }],
    });
    expect(request.headers.Authorization).toBe('Bearer sk-live-secretvalue');
    expect(fields.jobs[0]!.prompt).toBe('my secret plans');
  });

  test('keeps what is not secret', () => {
    const { logger, lines } = capture();
    logger.info(
      { jobId: 'j1', model: 'aipg-small', outputTokens: 12, headers: { 'content-type': 'json' } },
      'done',
    );
    expect(JSON.parse(lines[0]!)).toMatchObject({
      jobId: 'j1',
      model: 'aipg-small',
      outputTokens: 12,
      headers: { 'content-type': 'json' },
    });
  });

  test('serializes errors under err and error with their message', () => {
    const { logger, lines } = capture();
    logger.warn({ err: new Error('boom') }, 'a');
    logger.warn({ error: new Error('bang') }, 'b');
    expect(JSON.parse(lines[0]!).err).toMatchObject({ type: 'Error', message: 'boom' });
    expect(JSON.parse(lines[1]!).error).toMatchObject({ type: 'Error', message: 'bang' });
  });

  test('the field list covers keys, passwords, API keys, bearer tokens, authorization and prompts', () => {
    for (const f of [
      'privateKey',
      'operatorKey',
      'password',
      'keystorePassword',
      'apiKey',
      'authorization',
      'token',
      'prompt',
      'messages',
    ])
      expect(REDACTED_FIELDS).toContain(f);
  });
});
