/**
 * The public channels irc-binary can show (§3.7): public, not archived, name ≤ 32 bytes, in
 * creation order. Cached; refreshed on message-store's channel events, on a timer (the 5 s bound of
 * §3.7 even if an event is lost) and, at most once a second, when a SEND_MESSAGE names a channel
 * the cache does not know. The LIST_CHANNELS reply is encoded once per change.
 */
import type { Logger } from '@hubbub/runtime';
import { encodeServerFrame } from '../protocol/frames';
import { fitsWireName } from '../protocol/mapping';
import type { ChannelInfo, MessageStorePort } from './ports';

export const CHANNEL_REFRESH_MS = 5_000;
const MISS_REFRESH_MIN_MS = 1_000;

export class ChannelDirectory {
  private byName = new Map<string, ChannelInfo>();
  private byId = new Map<string, ChannelInfo>();
  private frame: Uint8Array = encodeServerFrame({ type: 'ListChannels', channels: [] });
  private lastRefresh = 0;
  private inflight: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly store: MessageStorePort,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The encoded LIST_CHANNELS reply (V10-style bytes). */
  get listFrame(): Uint8Array {
    return this.frame;
  }

  get channels(): ChannelInfo[] {
    return [...this.byName.values()];
  }

  /** Exact (byte-for-byte) name match among the listed channels (§3.5 rule 2). */
  lookup(name: string): ChannelInfo | undefined {
    return this.byName.get(name);
  }

  nameOf(channelId: string): string | undefined {
    return this.byId.get(channelId)?.name;
  }

  /** Like lookup, refreshing first when the cache misses and is older than a second. */
  async resolve(name: string): Promise<ChannelInfo | undefined> {
    const hit = this.byName.get(name);
    if (hit || this.now() - this.lastRefresh < MISS_REFRESH_MIN_MS) return hit;
    await this.refresh().catch(() => undefined);
    return this.byName.get(name);
  }

  /** Reloads from message-store (coalescing concurrent calls). Rejects when the store fails. */
  refresh(): Promise<void> {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = (async () => {
      do {
        this.again = false;
        this.lastRefresh = this.now();
        this.apply(await this.store.listPublicChannels());
      } while (this.again);
    })().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Sets the channel list (creation order), keeping only names that fit the wire. */
  apply(all: readonly ChannelInfo[]): void {
    const byName = new Map<string, ChannelInfo>();
    const byId = new Map<string, ChannelInfo>();
    for (const c of all) {
      if (!fitsWireName(c.name) || c.name.length === 0) continue;
      if (!byName.has(c.name)) byName.set(c.name, c);
      byId.set(c.id, c);
    }
    const before = [...this.byName.keys()];
    const changed = byName.size !== before.length || [...byName.keys()].some((k, i) => before[i] !== k);
    this.byName = byName;
    this.byId = byId;
    if (changed) {
      this.frame = encodeServerFrame({ type: 'ListChannels', channels: [...byName.keys()] });
      this.log.debug({ channels: byName.size }, 'channel list changed');
    }
  }
}
