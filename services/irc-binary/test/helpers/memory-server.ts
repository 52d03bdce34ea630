/** An irc-binary instance on port 0 with in-memory ports and a captured log. */
import { createLogger } from '@hubbub/runtime';
import { MemoryEvents, MemoryIdentity, MemoryMessageStore, MemoryPresence } from '../../src/adapters/memory';
import { testConfig } from '../../src/config';
import type { Config } from '../../src/config';
import { start } from '../../src/server';
import type { IrcBinary } from '../../src/server';

export interface MemoryServer {
  app: IrcBinary;
  store: MemoryMessageStore;
  identity: MemoryIdentity;
  presence: MemoryPresence;
  events: MemoryEvents;
  logs: string[];
}

export async function startMemoryServer(
  over: Partial<Config> = {},
  setup?: (s: Omit<MemoryServer, 'app'>) => void,
): Promise<MemoryServer> {
  const store = new MemoryMessageStore();
  const identity = new MemoryIdentity();
  const presence = new MemoryPresence();
  const events = new MemoryEvents();
  store.onPosted = (ev) => events.posted(ev);
  const logs: string[] = [];
  setup?.({ store, identity, presence, events, logs });
  const log = createLogger({
    service: 'irc-binary',
    level: 'debug',
    destination: { write: (s: string) => void logs.push(s) },
  });
  const app = await start(testConfig({ sendRatePerS: 0, ipSendRatePerS: 0, ipHistoryRatePerS: 0, ...over }), {
    store,
    identity,
    presence,
    events,
    log,
  });
  return { app, store, identity, presence, events, logs };
}

/** Parses the captured JSON log lines. */
export function logLines(logs: readonly string[]): Record<string, unknown>[] {
  return logs.map((l) => JSON.parse(l) as Record<string, unknown>);
}
