/**
 * In-memory twins of the ports (HOUSE-STYLE §3.2 "memory-*.ts twin for tests"): message-store with
 * snowflake ids, identity with accounts/app passwords/certificates, presence with fold-unique guest
 * claims, and a manual event source. Used by transport tests and as a reference of the contracts.
 */
import { foldName } from '@hubbub/runtime';
import { BackendUnavailableError } from '../app/ports';
import type {
  Account,
  Author,
  ChannelInfo,
  EventHandlers,
  EventSource,
  AccountRevocation,
  IdentityPort,
  MessageStorePort,
  PostOutcome,
  PostRequest,
  PostedEvent,
  PresenceLease,
  PresencePort,
  StoredMessage,
} from '../app/ports';

export class MemoryMessageStore implements MessageStorePort {
  readonly channels: (ChannelInfo & { isPublic: boolean })[] = [];
  readonly messages: (StoredMessage & { deleted: boolean; clientKey: string })[] = [];
  available = true;
  private lastMs = 0;
  private seq = 0;
  private nextChannel = 1;
  /** Called after each stored message (like the outbox publisher). */
  onPosted: ((ev: PostedEvent) => void) | undefined;

  nextId(): bigint {
    const ms = Math.max(Date.now(), this.lastMs);
    if (ms === this.lastMs) {
      this.seq++;
      if (this.seq > 0xfff) {
        this.lastMs++;
        this.seq = 0;
      }
    } else {
      this.lastMs = ms;
      this.seq = 0;
    }
    return (BigInt(this.lastMs) << 19n) | (1n << 12n) | BigInt(this.seq);
  }

  async ensurePublicChannels(names: readonly string[]): Promise<ChannelInfo[]> {
    this.check();
    return names.map((n) => this.channels.find((c) => c.name === n) ?? this.createChannel(n, true));
  }

  createChannel(name: string, isPublic: boolean): ChannelInfo & { isPublic: boolean } {
    const c = { id: String(this.nextChannel++), name, isPublic };
    this.channels.push(c);
    return c;
  }

  async listPublicChannels(): Promise<ChannelInfo[]> {
    this.check();
    return this.channels.filter((c) => c.isPublic).map(({ id, name }) => ({ id, name }));
  }

  async postBatch(author: Author, posts: readonly PostRequest[]): Promise<PostOutcome[]> {
    this.check();
    return posts.map((p) => {
      const dup = this.messages.find((m) => m.clientKey === p.clientKey);
      if (dup) return { ok: true, message: dup };
      return { ok: true, message: this.store(p.channelId, author.displayName, p.content, p.clientKey) };
    });
  }

  /** Stores a message as if another door had posted it and publishes the event. */
  store(channelId: string, authorName: string, text: string, clientKey = '', hasAttachments = false): StoredMessage {
    const m = { id: this.nextId(), channelId, authorName, text, hasAttachments, deleted: false, clientKey };
    this.messages.push(m);
    const ch = this.channels.find((c) => c.id === channelId);
    const cb = this.onPosted;
    if (cb && ch) queueMicrotask(() => cb({ message: m, channelName: ch.name, isPublic: ch.isPublic }));
    return m;
  }

  async listMessages(q: { channelId: string; before: bigint; after: bigint; limit: number }): Promise<StoredMessage[]> {
    this.check();
    const inRange = this.messages
      .filter((m) => m.channelId === q.channelId && !m.deleted)
      .filter((m) => (q.before === 0n || m.id < q.before) && (q.after === 0n || m.id > q.after))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const page = q.after !== 0n && q.before === 0n ? inRange.slice(0, q.limit) : inRange.slice(-q.limit);
    return page.map(({ id, channelId, authorName, text, hasAttachments }) => ({
      id,
      channelId,
      authorName,
      text,
      hasAttachments,
    }));
  }

  private check(): void {
    if (!this.available) throw new BackendUnavailableError('message-store stopped');
  }
}

export class MemoryIdentity implements IdentityPort {
  readonly accounts: (Account & { tokens: string[]; fingerprints: string[] })[] = [];
  /** Accounts banned or deleted (tests set this). */
  readonly revoked = new Map<string, AccountRevocation>();
  available = true;

  async revokedAccounts(ids: readonly string[]): Promise<Map<string, AccountRevocation>> {
    this.check();
    return new Map(ids.flatMap((id) => (this.revoked.has(id) ? [[id, this.revoked.get(id)!] as const] : [])));
  }

  addAccount(name: string, o: { tokens?: string[]; fingerprints?: string[] } = {}): Account {
    const a = {
      id: String(this.accounts.length + 1),
      name,
      tokens: o.tokens ?? [],
      fingerprints: o.fingerprints ?? [],
    };
    this.accounts.push(a);
    return a;
  }

  async lookupAccount(name: string): Promise<Account | undefined> {
    this.check();
    const a = this.accounts.find((x) => foldName(x.name) === foldName(name));
    return a ? { id: a.id, name: a.name } : undefined;
  }

  async verifyAppPassword(account: Account, token: string, _clientAddress: string): Promise<boolean> {
    this.check();
    return this.accounts.find((a) => a.id === account.id)?.tokens.includes(token.toLowerCase()) ?? false;
  }

  async lookupByCertFingerprint(fp: string): Promise<Account | undefined> {
    this.check();
    const a = this.accounts.find((x) => x.fingerprints.includes(fp));
    return a ? { id: a.id, name: a.name } : undefined;
  }

  private check(): void {
    if (!this.available) throw new BackendUnavailableError('identity stopped');
  }
}

export class MemoryPresence implements PresencePort {
  readonly guests = new Map<string, string>();
  readonly sessions = new Set<string>();

  async claimGuest(nick: string, sessionId: string): Promise<PresenceLease | undefined> {
    const key = foldName(nick);
    if (this.guests.has(key)) return undefined;
    this.guests.set(key, sessionId);
    return { release: async () => void (this.guests.get(key) === sessionId && this.guests.delete(key)) };
  }

  async enterAccountSession(_account: Account, sessionId: string): Promise<PresenceLease> {
    this.sessions.add(sessionId);
    return { release: async () => void this.sessions.delete(sessionId) };
  }
}

export class MemoryEvents implements EventSource {
  private h: EventHandlers | undefined;

  async start(h: EventHandlers): Promise<void> {
    this.h = h;
  }

  posted(ev: PostedEvent): void {
    this.h?.onPosted(ev);
  }

  channelsChanged(): void {
    this.h?.onChannelsChanged();
  }

  async close(): Promise<void> {
    this.h = undefined;
  }
}
