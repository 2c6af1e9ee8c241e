import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { createWriteCoalescer, socketOf } from '../src/coalesce.ts';

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('createWriteCoalescer', () => {
  test('corks a socket at its first write of a turn and uncorks it once, at the end of the turn', async () => {
    const calls: string[] = [];
    const socket = { cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
    const other = { cork: () => calls.push('cork other'), uncork: () => calls.push('uncork other') };
    const hold = createWriteCoalescer();
    hold(socket);
    hold(socket);
    hold(other);
    hold(socket);
    hold(undefined);
    expect(calls).toEqual(['cork', 'cork other']);
    await turn();
    expect(calls).toEqual(['cork', 'cork other', 'uncork', 'uncork other']);
    // The next turn corks afresh.
    hold(socket);
    expect(calls.at(-1)).toBe('cork');
    await turn();
    expect(calls.at(-1)).toBe('uncork');
    expect(calls.filter((c) => c === 'cork').length).toBe(calls.filter((c) => c === 'uncork').length);
    // flush: what is held leaves now (before a socket is destroyed), and the turn's end has nothing left.
    hold(socket);
    hold.flush();
    expect(calls.slice(-2)).toEqual(['cork', 'uncork']);
    await turn();
    expect(calls.slice(-2)).toEqual(['cork', 'uncork']);
  });

  test('on a real socket, the frames of one turn arrive whole and in order, nothing before the turn ends', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = await accepted;
    const frames = Array.from({ length: 50 }, (_, i) => `frame ${i};`);
    let received = '';
    const all = new Promise<void>((resolve) =>
      peer.on('data', (d) => {
        received += d;
        if (received.length >= frames.join('').length) resolve();
      }),
    );
    const hold = createWriteCoalescer();
    for (const f of frames) {
      hold(client);
      client.write(f);
    }
    // Held: nothing left this process yet.
    expect(client.writableLength).toBe(frames.join('').length);
    await turn();
    await all;
    expect(received).toBe(frames.join(''));
    client.destroy();
    peer.destroy();
    server.close();
  });

  test('socketOf finds the socket of a ws WebSocket, and nothing on anything else', () => {
    const socket = { cork() {}, uncork() {} };
    expect(socketOf({ _socket: socket })).toBe(socket);
    expect(socketOf({ _socket: null })).toBeUndefined();
    expect(socketOf({ _socket: { cork: 1 } })).toBeUndefined();
    expect(socketOf(null)).toBeUndefined();
    expect(socketOf({})).toBeUndefined();
  });
});
