/** A stream whose writes can be held back and then flushed together (a `node:net` socket). */
export type Corkable = { cork(): void; uncork(): void };

/**
 * Frames written to one socket in the same turn of the event loop, sent in one write: `hold(socket)`
 * before each write corks the socket at the turn's first, and the turn's end (`setImmediate`, after its
 * I/O callbacks) uncorks every socket held. Under load the frames of many jobs (dispatches that one
 * group commit released, results of backends that answered together) cost the sender one syscall and
 * the reader one wake-up instead of one each; alone, a frame waits only for the current turn to end.
 */
export function createWriteCoalescer(): WriteCoalescer {
  const held = new Set<Corkable>();
  const flush = () => {
    for (const s of held) s.uncork();
    held.clear();
  };
  const hold = (socket: Corkable | undefined) => {
    if (!socket || held.has(socket)) return;
    if (held.size === 0) setImmediate(flush);
    socket.cork();
    held.add(socket);
  };
  return Object.assign(hold, { flush });
}

/** `hold(socket)` before a write; `flush()` sends what is held now (before a socket is destroyed). */
export type WriteCoalescer = ((socket: Corkable | undefined) => void) & { flush(): void };

/** The socket under a `ws` WebSocket (its `_socket`, where it has one). */
export function socketOf(ws: unknown): Corkable | undefined {
  const s = (ws as { _socket?: Partial<Corkable> } | null)?._socket;
  return typeof s?.cork === 'function' && typeof s.uncork === 'function' ? (s as Corkable) : undefined;
}
