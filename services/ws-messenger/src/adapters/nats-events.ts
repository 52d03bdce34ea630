/**
 * EventsPort over NATS: chat events through @hubbub/msg-client's deduping subscription (gaps
 * filled after a reconnect), channel events, and identity's session revocations / user changes.
 * Channel and identity events are NATS core (at-most-once): what was published while the connection was
 * down is gone; server.ts drops what the hub derived from them on every connection change (connectNats onStatus).
 */
import { subscribeJson } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { historyFetcher, subscribeChat, systemPrincipal } from '@hubbub/msg-client';
import type { MessageStoreClient } from '@hubbub/msg-client';
import { identityV1, messagesV1, subjects } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { ChannelInfo, ChannelKind, EventsPort, MessageChange, StoredMessage } from '../app/ports';
import { channelKind, DOOR, toChannel, toMessage } from './message-store-grpc';

type MessageCb = (c: MessageChange, m: StoredMessage, ch: { id: string; isPublic: boolean; kind: ChannelKind }) => void;

const CHANGE: Record<number, MessageChange | undefined> = {
  [messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED]: 'posted',
  [messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_EDITED]: 'edited',
  [messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_DELETED]: 'deleted',
};

export function createNatsEvents(o: {
  nc: NatsConnection;
  prefix: string;
  log: Logger;
  client: MessageStoreClient;
  /** True while no event would be used (no push subscriber): posted events are recorded undecoded. */
  idle?: () => boolean;
}): EventsPort {
  const subj = subjects(o.prefix);
  const messageCbs: MessageCb[] = [];
  const channelCbs: ((c: ChannelInfo) => void)[] = [];
  const revokeCbs: ((userId: string, sessionIds: readonly string[], all: boolean) => void)[] = [];
  const onBad = (subject: string, err: unknown): void =>
    o.log.warn({ subject, err, code: 'WSM_EVENT_UNDECODABLE' }, 'undecodable event');

  const chat = subscribeChat({
    nc: o.nc,
    prefix: o.prefix,
    log: o.log,
    fetchHistory: historyFetcher(o.client, systemPrincipal(DOOR)),
    ...(o.idle ? { idle: o.idle } : {}),
    onEvent: (ev) => {
      const change = CHANGE[ev.kind];
      if (!change || !ev.message) return;
      const m = toMessage(ev.message);
      const ch = {
        id: ev.channel?.id ?? m.channelId,
        isPublic: ev.channel?.visibility === messagesV1.Visibility.VISIBILITY_PUBLIC,
        kind: channelKind(ev.channel?.kind ?? messagesV1.ChannelKind.CHANNEL_KIND_UNSPECIFIED),
      };
      for (const cb of messageCbs) cb(change, m, ch);
    },
  });
  const subs = [
    subscribeJson(
      o.nc,
      subj.channelAll,
      messagesV1.ChannelEvent,
      (ev) => {
        if (!ev.channel) return;
        const c = toChannel(ev.channel);
        for (const cb of channelCbs) cb(c);
      },
      onBad,
    ),
    subscribeJson(
      o.nc,
      subj.sessionRevoked,
      identityV1.SessionRevokedEvent,
      (ev) => {
        for (const cb of revokeCbs) cb(ev.userId, ev.sessionIds, ev.allSessions);
      },
      onBad,
    ),
    subscribeJson(
      o.nc,
      subj.userAll,
      identityV1.UserEvent,
      (ev) => {
        const t = ev.type;
        if (
          ev.user &&
          (t === identityV1.UserEventType.USER_EVENT_TYPE_DELETED ||
            t === identityV1.UserEventType.USER_EVENT_TYPE_BANNED ||
            t === identityV1.UserEventType.USER_EVENT_TYPE_KICKED)
        ) {
          for (const cb of revokeCbs) cb(ev.user.id, [], true);
        }
      },
      onBad,
    ),
  ];
  return {
    onMessage: (cb) => void messageCbs.push(cb),
    onChannel: (cb) => void channelCbs.push(cb),
    onSessionsRevoked: (cb) => void revokeCbs.push(cb),
    close: async () => {
      chat.close();
      for (const s of subs) s.unsubscribe();
    },
  };
}
