/**
 * Open-handle check: snapshot the active resources before a test, then assert that sockets,
 * servers and timers created since have been released (polling briefly, since close is async).
 */
const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'PipeWrap', 'TLSWrap', 'FSReqCallback']);

function counts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (WATCHED.has(r)) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

export interface HandleSnapshot {
  readonly before: ReadonlyMap<string, number>;
}

export function snapshotHandles(): HandleSnapshot {
  return { before: counts() };
}

/** Resources of the watched kinds that are still open beyond the snapshot, after waiting up to timeoutMs. */
export async function leakedHandles(s: HandleSnapshot, timeoutMs = 2_000): Promise<Record<string, number>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const now = counts();
    const leaked: Record<string, number> = {};
    for (const [k, n] of now) {
      const extra = n - (s.before.get(k) ?? 0);
      if (extra > 0) leaked[k] = extra;
    }
    if (Object.keys(leaked).length === 0 || Date.now() > end) return leaked;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10).unref());
  }
}
