/**
 * Write coalescing: frames queued on a connection during one event-loop turn leave in ONE
 * `socket.write` at the end of the turn (setImmediate runs after the turn's I/O callbacks). A
 * broadcast frame is one shared Uint8Array queued on many connections; it is copied only into each
 * connection's single concatenated write.
 */
export interface Flushable {
  flush(): void;
}

const dirty = new Set<Flushable>();
let scheduled = false;

function run(): void {
  scheduled = false;
  for (const c of dirty) {
    dirty.delete(c);
    c.flush();
  }
}

/** Flushes `c` at the end of this event-loop turn (once, however often it is scheduled). */
export function scheduleFlush(c: Flushable): void {
  dirty.add(c);
  if (!scheduled) {
    scheduled = true;
    setImmediate(run);
  }
}

/** Forgets `c` (closed connections). */
export function cancelFlush(c: Flushable): void {
  dirty.delete(c);
}
