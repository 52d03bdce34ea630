/** Users, flows and seeded messages created directly through identity and message-store. */
import { messagesV1, identityV1 } from '@hubbub/proto';
import type { Stack } from './stack';

export interface U {
  readonly uuid: string;
  readonly token: string;
  readonly login: string;
  readonly password: string;
  readonly username: string;
}

export const auth = (u: U): { uuid: string; auth_id: string } => ({ uuid: u.uuid, auth_id: u.token });

export async function makeUser(
  s: Stack,
  login: string,
  o: { password?: string; username?: string; bio?: string } = {},
): Promise<U> {
  const password = o.password ?? 'password';
  const username = o.username ?? login;
  const r = await s.idClient.register(
    identityV1.RegisterRequest.fromPartial({
      username: login,
      password,
      displayName: username,
      bio: o.bio ?? '',
      createSession: true,
    }),
  );
  return { uuid: r.user!.id, token: r.session!.token, login, password, username };
}

export function principalOf(u: { uuid: string; username?: string }): messagesV1.Principal {
  return {
    userId: u.uuid,
    displayName: u.username ?? u.uuid,
    kind: u.uuid.startsWith('guest:')
      ? messagesV1.PrincipalKind.PRINCIPAL_KIND_GUEST
      : messagesV1.PrincipalKind.PRINCIPAL_KIND_ACCOUNT,
    sysop: false,
    door: u.uuid.startsWith('guest:') ? 'irc-binary' : 'test',
  };
}

const KIND = {
  chat: messagesV1.ChannelKind.CHANNEL_KIND_DIRECT,
  group: messagesV1.ChannelKind.CHANNEL_KIND_GROUP,
  channel: messagesV1.ChannelKind.CHANNEL_KIND_CHANNEL,
};

export async function makeFlow(
  s: Stack,
  kind: 'chat' | 'group' | 'channel',
  owner: U,
  members: U[],
  o: { title?: string; info?: string } = {},
): Promise<string> {
  const r = await s.msgClient.createChannel(
    messagesV1.CreateChannelRequest.fromPartial({
      principal: principalOf(owner),
      kind: KIND[kind],
      title: o.title ?? '',
      info: o.info ?? '',
      visibility: messagesV1.Visibility.VISIBILITY_PRIVATE,
      memberIds: members.map((m) => m.uuid),
    }),
  );
  return r.channel!.id;
}

/** Seeds messages with chosen creation seconds (ascending ids follow the times). */
export async function seed(
  s: Stack,
  channelId: string,
  items: {
    author: { uuid: string; username?: string };
    sec: number;
    text?: string;
    changedSec?: number;
    deleted?: boolean;
  }[],
): Promise<messagesV1.Message[]> {
  const out: messagesV1.Message[] = [];
  for (let i = 0; i < items.length; i += 500) {
    const r = await s.seedClient.seedMessages(
      messagesV1.SeedMessagesRequest.fromPartial({
        messages: items.slice(i, i + 500).map((it, j) => ({
          principal: principalOf(it.author),
          message: { channelId, text: it.text ?? `m${i + j}`, kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL },
          createdAt: new Date(it.sec * 1000),
          ...(it.changedSec !== undefined ? { changedAt: new Date(it.changedSec * 1000) } : {}),
          ...(it.deleted ? { deleted: true } : {}),
        })),
      }),
      { deadlineMs: 30_000 },
    );
    out.push(...r.messages);
  }
  return out;
}

export async function post(s: Stack, channelId: string, author: { uuid: string; username?: string }, text: string) {
  const r = await s.msgClient.postMessage(
    messagesV1.PostMessageRequest.fromPartial({
      principal: principalOf(author),
      message: { channelId, text, kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL, clientKey: `t-${Math.random()}` },
    }),
  );
  return r.message!;
}

export async function ensurePublic(s: Stack, names: string[]): Promise<messagesV1.Channel[]> {
  const r = await s.msgClient.ensurePublicChannels(
    messagesV1.EnsurePublicChannelsRequest.fromPartial({
      slugs: names,
      kind: messagesV1.ChannelKind.CHANNEL_KIND_GROUP,
    }),
  );
  return r.channels;
}
