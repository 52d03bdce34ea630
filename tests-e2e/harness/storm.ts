/**
 * A bounded post storm from several doors at once, recording every post that got a success reply
 * (acknowledged) and every one that was reported as failed. Posters survive their door going away:
 * they reconnect and keep going. Every text is unique, so a duplicate in history is visible.
 */
import { messagesV1 } from '@hubbub/proto';
import { DumDumClient } from '../clients/dumdum';
import { MoreliaClient } from '../clients/morelia';
import type { StoreClient } from './env';
import { otherDoorGuest } from './env';

export interface Ack {
  readonly text: string;
  readonly id: string;
  readonly door: string;
  /** When the success reply arrived (ms since epoch). */
  readonly at: number;
}

export interface StormOptions {
  readonly ircPort: number;
  readonly wsPort: number;
  readonly store: StoreClient;
  readonly channelId: string;
  /** Morelia accounts (already registered): login/password. */
  readonly moreliaUsers: ReadonlyArray<{ login: string; password: string }>;
  readonly ddNicks: readonly string[];
  /** Posts per second per poster. */
  readonly ratePerPoster: number;
  /** How long a dum-dum post may wait for its echo before it counts as failed. */
  readonly echoTimeoutMs?: number;
}

export class Storm {
  readonly acked: Ack[] = [];
  readonly failed: { text: string; door: string; why: string }[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(private readonly o: StormOptions) {}

  start(tag: string): void {
    this.running = true;
    for (const nick of this.o.ddNicks) this.loops.push(this.ddLoop(nick, tag));
    for (const u of this.o.moreliaUsers) this.loops.push(this.wsLoop(u, tag));
    this.loops.push(this.grpcLoop(tag));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private tick(): Promise<void> {
    return new Promise((r) => setTimeout(r, 1000 / this.o.ratePerPoster));
  }

  private async ddLoop(nick: string, tag: string): Promise<void> {
    let client: DumDumClient | undefined;
    const pending = new Map<string, { sentAt: number }>();
    const timeout = this.o.echoTimeoutMs ?? 5_000;
    const attach = (c: DumDumClient): void => {
      const onEcho = (m: { content: string; id: bigint }): void => {
        if (pending.delete(m.content))
          this.acked.push({ text: m.content, id: m.id.toString(), door: 'irc-binary', at: Date.now() });
      };
      c.onMessage = onEcho;
      for (const m of c.received) onEcho(m); // arrived with the ACK, before onMessage was attached
    };
    const expire = (all: boolean): void => {
      const now = Date.now();
      for (const [text, p] of pending) {
        if (all || now - p.sentAt > timeout) {
          pending.delete(text);
          this.failed.push({ text, door: 'irc-binary', why: all ? 'connection lost' : 'no echo' });
        }
      }
    };
    let connects = 0;
    while (this.running) {
      if (!client || client.closed) {
        expire(true);
        try {
          // A crashed door's guest nicks stay claimed until their presence lease expires, so a
          // reconnecting poster picks a fresh nick, as a person would.
          client = await DumDumClient.connect(this.o.ircPort, connects++ === 0 ? nick : `${nick}_${connects}`);
          attach(client);
        } catch {
          client = undefined;
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
      }
      const text = `${tag}-dd-${nick}-${this.seq++}`;
      pending.set(text, { sentAt: Date.now() });
      client.send('general', text);
      expire(false);
      await this.tick();
    }
    // Give outstanding posts their full echo window.
    const end = Date.now() + timeout;
    while (pending.size > 0 && Date.now() < end && client && !client.closed)
      await new Promise((r) => setTimeout(r, 20));
    expire(true);
    await client?.close();
  }

  private async wsLoop(u: { login: string; password: string }, tag: string): Promise<void> {
    let client: MoreliaClient | undefined;
    while (this.running) {
      if (!client || client.closed) {
        try {
          client = await MoreliaClient.connect(this.o.wsPort);
          await client.login(u.login, u.password);
        } catch {
          client = undefined;
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
      }
      const text = `${tag}-ws-${u.login}-${this.seq++}`;
      try {
        const r = await client.sendMessage(this.o.channelId, text, this.seq);
        if (r.errors.code === 200)
          this.acked.push({ text, id: r.data!.message![0]!.uuid, door: 'ws-messenger', at: Date.now() });
        else this.failed.push({ text, door: 'ws-messenger', why: `${r.errors.code} ${r.errors.detail}` });
      } catch (e) {
        this.failed.push({ text, door: 'ws-messenger', why: String(e) });
        await client.close();
        client = undefined;
      }
      await this.tick();
    }
    await client?.close();
  }

  private async grpcLoop(tag: string): Promise<void> {
    while (this.running) {
      const text = `${tag}-grpc-${this.seq++}`;
      try {
        const r = await this.o.store.postMessage(
          messagesV1.PostMessageRequest.fromPartial({
            principal: otherDoorGuest('stormdoor'),
            message: { channelId: this.o.channelId, text, clientKey: text },
          }),
          { attempts: 3, deadlineMs: 3_000 },
        );
        this.acked.push({ text, id: r.message!.id, door: 'grpc', at: Date.now() });
      } catch (e) {
        this.failed.push({ text, door: 'grpc', why: String(e) });
      }
      await this.tick();
    }
  }
}

/** Reads a channel's whole history (ascending ids) through message-store, paging forward. */
export async function readWholeHistory(store: StoreClient, channelId: string): Promise<messagesV1.Message[]> {
  const out: messagesV1.Message[] = [];
  let after = '';
  for (;;) {
    const page = await store.listMessages(
      messagesV1.ListMessagesRequest.fromPartial({
        principal: otherDoorGuest('auditor'),
        channelId,
        // ids are never below 2, so after=1 means "from the oldest" (after=0 would mean no bound: newest page).
        after: after || '1',
        limit: 100,
      }),
      { attempts: 5 },
    );
    out.push(...page.messages);
    if (page.messages.length < 100) return out;
    after = page.messages[page.messages.length - 1]!.id;
  }
}
