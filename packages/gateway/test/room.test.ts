import type { Address } from 'viem';
import { describe, expect, test } from 'vitest';
import { createPayerRoom } from '../src/billing/room.ts';

const P = '0x00000000000000000000000000000000000000aa' as Address;
const Q = '0x00000000000000000000000000000000000000bb' as Address;

describe('createPayerRoom: whether a payer’s job may leave before its reservation is written', () => {
  test('an unknown payer has no room; a known one has what its last reservation left', () => {
    const room = createPayerRoom();
    expect(room.take(P, 1n)).toBe(false);
    room.remember(P, 10n);
    expect(room.take(P, 10n)).toBe(true);
    expect(room.take(Q, 1n)).toBe(false);
  });

  test('a burst never takes more than the room: early jobs not yet written count against it', () => {
    const room = createPayerRoom();
    room.remember(P, 10n);
    expect([room.take(P, 4n), room.take(P, 4n), room.take(P, 4n)]).toEqual([true, true, false]);
    // Another job of the payer (one that did not leave early) is written: the database now says 6 are left,
    // which does not count the two early ones still unwritten (8): no room for a third.
    room.remember(P, 6n);
    expect(room.take(P, 4n)).toBe(false);
    // Their reservations are written: the next figure from the database counts them.
    room.written(P, 4n);
    room.written(P, 4n);
    room.remember(P, 6n - 8n);
    expect(room.take(P, 1n)).toBe(false);
    room.remember(P, 5n);
    expect(room.take(P, 5n)).toBe(true);
  });

  test('a refused reservation forgets the payer; a written one teaches it again', () => {
    const room = createPayerRoom();
    room.remember(P, 100n);
    room.forget(P);
    expect(room.take(P, 1n)).toBe(false);
    room.remember(P, 100n);
    expect(room.take(P, 1n)).toBe(true);
    // A refusal of an early job also ends its pending fee.
    room.written(P, 1n);
    room.forget(P);
    room.remember(P, 1n);
    expect(room.take(P, 1n)).toBe(true);
  });

  test('remembers the most recent payers only, the least recently written forgotten first', () => {
    const room = createPayerRoom(2);
    room.remember(P, 10n);
    room.remember(Q, 10n);
    room.remember(P, 10n); // written again: now the most recent
    const R = '0x00000000000000000000000000000000000000cc' as Address;
    room.remember(R, 10n);
    expect(room.take(Q, 1n)).toBe(false);
    expect(room.take(P, 1n)).toBe(true);
    expect(room.take(R, 1n)).toBe(true);
  });
});
