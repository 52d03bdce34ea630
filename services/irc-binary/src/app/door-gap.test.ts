/**
 * The door's gap fill after an event-bus reconnect (door.ts fillAfterReconnect / fillGaps): with the in-memory
 * message-store, a message whose event would have come after a higher id, a fill that cannot read history at first,
 * and a connection lost again while the first reconnect's refill waits.
 */
import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { MemoryMessageStore, MemoryPresence } from '../adapters/memory';
import type { Authenticator } from './authenticator';
import { ChannelDirectory } from './channel-directory';
import { Door } from './door';
import type { DoorMetrics, StoredMessage } from './ports';

const lines: Record<string, unknown>[] = [];
const log = createLogger({
  service: 'ircb-gap-test',
  level: 'warn',
  destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
});
const metrics: DoorMetrics = {
  connectionOpened: () => undefined,
  connectionClosed: () => undefined,
  posted: () => undefined,
  dropped: () => undefined,
  delivered: () => undefined,
  historyDelayed: () => undefined,
  auth: () => undefined,
};

async function setup() {
  const store = new MemoryMessageStore();
  const general = store.createChannel('general', true);
  const channels = new ChannelDirectory(store, log);
  await channels.refresh();
  const door = new Door(
    { store, presence: new MemoryPresence(), authenticator: {} as Authenticator, channels, metrics, log },
    {
      instanceId: 't',
      maxPendingFrames: 256,
      sendRatePerS: 0,
      sendBurst: 0,
      historyRatePerS: 0,
      historyBurst: 1,
      ipSendRatePerS: 0,
      ipSendBurst: 1,
      ipHistoryRatePerS: 0,
      ipHistoryBurst: 1,
      backendTimeoutMs: 1_000,
    },
  );
  /** A message stored with a chosen id (as another batch or replica would have committed it). */
  const storeWithId = (id: bigint, text: string): StoredMessage => {
    const m = { id, channelId: general.id, authorName: 'x', text, hasAttachments: false };
    store.messages.push({ ...m, deleted: false, clientKey: '' });
    return m;
  };
  const live = (m: StoredMessage): void => door.onPosted({ message: m, channelName: 'general', isPublic: true });
  return { store, general, door, storeWithId, live };
}

it('fills a message whose event would have come after a higher id, missed while the bus was down', async () => {
  const t = await setup();
  await new Promise((r) => setTimeout(r, 20)); // ids after this instance started (the fill never reads before)
  const top = t.store.store(t.general.id, 'a', 'top');
  // Committed by another batch or replica just before `top`, its event still on its way when the bus was lost.
  const late = t.storeWithId(top.id - (2n << 19n), 'late');
  t.live(top);
  t.door.onBusDisconnected();
  await t.door.fillAfterReconnect(1);
  expect(t.door.hasDelivered(late.id.toString())).toBe(true);
});

it('repeats a fill that could not read history until it can, and only then forgets the disconnect point', async () => {
  const t = await setup();
  const top = t.store.store(t.general.id, 'a', 'top');
  t.live(top);
  t.door.onBusDisconnected();
  const missed = t.store.store(t.general.id, 'a', 'missed while down');
  t.store.available = false;
  const filled = t.door.fillAfterReconnect(1);
  await new Promise((r) => setTimeout(r, 30)); // the first fill and a few refills fail
  expect(t.door.hasDelivered(missed.id.toString())).toBe(false);
  t.store.available = true;
  await expect(filled).resolves.toBe(1);
  expect(t.door.hasDelivered(missed.id.toString())).toBe(true);
});

it('keeps the disconnect point for the refill of a later reconnect (bus flapping)', async () => {
  const t = await setup();
  const first = t.store.store(t.general.id, 'a', 'first');
  t.live(first);
  t.door.onBusDisconnected();
  const one = t.door.fillAfterReconnect(50);
  await new Promise((r) => setTimeout(r, 5));
  // Lost again while the first reconnect waits for its refill; a message committed now, with a live id above it.
  t.door.onBusDisconnected();
  const lower = t.store.store(t.general.id, 'a', 'lower');
  const higher = t.store.store(t.general.id, 'a', 'higher');
  t.live(higher); // its event arrived; `lower`'s never did
  t.store.messages.splice(
    t.store.messages.findIndex((m) => m.id === lower.id),
    1,
  );
  await one; // the first reconnect's refill ends: it must not forget the point the second one needs
  t.storeWithId(lower.id, 'lower'); // visible in history only now
  await t.door.fillAfterReconnect(1);
  await waitFor(() => t.door.hasDelivered(lower.id.toString()), 2_000, 'the lower message');
});

it('a gap longer than the page budget delivers the budget, oldest first, and says IRCB_GAP_FILL_TRUNCATED', async () => {
  const t = await setup();
  await new Promise((r) => setTimeout(r, 20));
  const top = t.store.store(t.general.id, 'a', 'top');
  t.live(top);
  t.door.onBusDisconnected();
  const missed = Array.from({ length: 450 }, (_, i) => t.store.store(t.general.id, 'a', `missed ${i}`));
  lines.length = 0;
  await t.door.fillGaps(2);
  // The margin starts where this instance started, before `top`: its one page (top and 99 after it) crosses into
  // the gap, then the gap's own two pages.
  expect(missed.filter((m) => t.door.hasDelivered(m.id.toString())).map((m) => m.text)).toEqual(
    missed.slice(0, 299).map((m) => m.text),
  );
  expect(lines.filter((l) => l['code'] === 'IRCB_GAP_FILL_TRUNCATED')).toEqual([
    expect.objectContaining({ channel: 'general', pages: 2 }),
  ]);
  // A budget that covers the rest reads it, and nothing is called truncated.
  lines.length = 0;
  await t.door.fillGaps(5);
  expect(missed.every((m) => t.door.hasDelivered(m.id.toString()))).toBe(true);
  expect(lines.filter((l) => l['code'] === 'IRCB_GAP_FILL_TRUNCATED')).toEqual([]);
});
