/**
 * EventSource over NATS: message-store's chat events (`<prefix>.chat.>`, MessageEvent as proto3
 * JSON), channel events (`<prefix>.channel.>`, which refresh the channel list) and identity's user
 * events (`<prefix>.identity.user.>`: a ban in force or a deletion ends the account's connections).
 *
 * Hot path: most posted events of a busy instance are its own posts, already delivered when
 * message-store confirmed them. The message id is peeked from the raw JSON and, when already
 * delivered, the event is dropped without decoding it (a full decode is the fallback whenever the
 * peek finds nothing). Edited/deleted events are not delivered live (§3.6) and are skipped by
 * subject. After a reconnect the door fills gaps from history (Door.fillGaps).
 *
 * (This replaces @hubbub/msg-client's subscribeChat here only for the decode-skipping fast path;
 * dedupe and gap filling follow the same rules.)
 */
import type { Subscription } from '@nats-io/nats-core';
import type { NatsConnection } from '@hubbub/nats';
import { decodeJson } from '@hubbub/nats';
import { identityV1, messagesV1, subjects } from '@hubbub/proto';
import { peekPostedId } from '@hubbub/msg-client';
import type { Logger } from '@hubbub/runtime';
import type { AccountRevocation, EventHandlers, EventSource } from '../app/ports';
import { toStored } from './message-store-grpc';

const POSTED_SUFFIX = '.posted';

/** Whether a user event ends the account's sessions: a ban in force, a deletion, or a kick. */
export function accountRevocation(ev: identityV1.UserEvent, nowMs: number): AccountRevocation | undefined {
  if (!ev.user || ev.user.id === '') return undefined;
  if (ev.type === identityV1.UserEventType.USER_EVENT_TYPE_DELETED) return 'deleted';
  if (ev.type === identityV1.UserEventType.USER_EVENT_TYPE_KICKED) return 'kicked';
  if (ev.type !== identityV1.UserEventType.USER_EVENT_TYPE_BANNED) return undefined;
  const until = ev.user.ban?.until;
  return until === undefined || until.getTime() > nowMs ? 'banned' : undefined;
}

export function natsEventSource(o: { nc: NatsConnection; prefix: string; log: Logger }): EventSource {
  const subs: Subscription[] = [];
  let statusIter: AsyncIterable<unknown> | undefined;
  let closed = false;
  return {
    async start(h: EventHandlers) {
      const subj = subjects(o.prefix);
      subs.push(
        o.nc.subscribe(subj.chatAll, {
          callback: (err, msg) => {
            if (err || !msg.subject.endsWith(POSTED_SUFFIX)) return;
            const peeked = peekPostedId(msg.data);
            if (peeked !== undefined && h.seen(peeked)) return;
            let ev: messagesV1.MessageEvent;
            try {
              ev = decodeJson(messagesV1.MessageEvent, msg.data);
            } catch (e) {
              o.log.warn({ subject: msg.subject, err: e, code: 'IRCB_EVENT_UNDECODABLE' }, 'undecodable chat event');
              return;
            }
            if (ev.kind !== messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED || !ev.message || !ev.channel) return;
            if (ev.message.deleted) return;
            h.onPosted({
              message: toStored(ev.message),
              channelName: ev.channel.slug,
              isPublic: ev.channel.visibility === messagesV1.Visibility.VISIBILITY_PUBLIC,
            });
          },
        }),
      );
      subs.push(o.nc.subscribe(subj.channelAll, { callback: () => h.onChannelsChanged() }));
      // Bans and deletions end the account's connections at once (identity's user events).
      subs.push(
        o.nc.subscribe(subj.userAll, {
          callback: (err, msg) => {
            if (err || !h.onAccountRevoked) return;
            let ev: identityV1.UserEvent;
            try {
              ev = decodeJson(identityV1.UserEvent, msg.data);
            } catch (e) {
              o.log.warn({ subject: msg.subject, err: e, code: 'IRCB_EVENT_UNDECODABLE' }, 'undecodable user event');
              return;
            }
            const why = accountRevocation(ev, Date.now());
            if (why && ev.user) h.onAccountRevoked(ev.user.id, why);
          },
        }),
      );
      await o.nc.flush();
      const it = o.nc.status();
      statusIter = it;
      void (async () => {
        for await (const s of it) {
          if (closed) break;
          const type = (s as { type?: string }).type;
          if (type === 'disconnect') h.onDisconnect?.();
          else if (type === 'reconnect') h.onReconnect();
        }
      })();
    },
    async close() {
      closed = true;
      for (const s of subs) s.unsubscribe();
      (statusIter as Partial<{ stop(): void }> | undefined)?.stop?.();
    },
  };
}
