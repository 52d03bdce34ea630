/**
 * The real platform for integration tests: a fresh NATS prefix, fresh PostgreSQL databases,
 * identity and message-store as child processes, and irc-binary instances started in-process with
 * real adapters (gRPC, NATS KV presence, NATS events).
 */
import { createClient } from '@hubbub/grpc';
import { createMessageStoreClient, newMessage, principal } from '@hubbub/msg-client';
import type { MessageStoreClient } from '@hubbub/msg-client';
import type { messagesV1 } from '@hubbub/proto';
import { identityV1 } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { createTestDatabase, createTestNats } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import type { IdentityClient } from '../../src/adapters/identity-grpc';
import { testConfig } from '../../src/config';
import type { Config } from '../../src/config';
import { start } from '../../src/server';
import type { IrcBinary } from '../../src/server';
import { identityEnv, messageStoreEnv, startService } from './processes';
import type { StartedService } from './processes';

export interface IrcInstance {
  app: IrcBinary;
  logs: string[];
}

export interface Platform {
  nats: TestNats;
  identityDb: TestDatabase;
  storeDb: TestDatabase;
  identity: StartedService;
  store: StartedService;
  idClient: IdentityClient;
  msClient: MessageStoreClient;
  irc: IrcInstance[];
  startIrc(over?: Partial<Config>): Promise<IrcInstance>;
  restartIdentity(): Promise<void>;
  restartStore(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPlatform(): Promise<Platform> {
  const nats = createTestNats();
  const [identityDb, storeDb] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  const idEnv = (port?: number) =>
    identityEnv({ databaseUrl: identityDb.url, natsUrl: nats.url, prefix: nats.prefix, ...(port ? { port } : {}) });
  const msEnv = (port?: number) =>
    messageStoreEnv({ databaseUrl: storeDb.url, natsUrl: nats.url, prefix: nats.prefix, ...(port ? { port } : {}) });
  const [identity, store] = await Promise.all([
    startService('identity', idEnv()),
    startService('message-store', msEnv()),
  ]);
  const p: Platform = {
    nats,
    identityDb,
    storeDb,
    identity,
    store,
    idClient: createClient(identityV1.IdentityServiceService, identity.addr),
    msClient: createMessageStoreClient(store.addr),
    irc: [],
    async startIrc(over = {}) {
      const logs: string[] = [];
      const log = createLogger({
        service: 'irc-binary',
        level: 'debug',
        destination: { write: (s: string) => void logs.push(s) },
      });
      const app = await start(
        testConfig({
          natsUrl: nats.url,
          natsPrefix: nats.prefix,
          identityAddr: p.identity.addr,
          messageStoreAddr: p.store.addr,
          sendRatePerS: 0,
          ipSendRatePerS: 0,
          ipHistoryRatePerS: 0,
          ...over,
        }),
        { log },
      );
      const inst = { app, logs };
      p.irc.push(inst);
      return inst;
    },
    async restartIdentity() {
      await p.identity.stop();
      p.identity = await startService('identity', idEnv(p.identity.port));
    },
    async restartStore() {
      await p.store.stop();
      p.store = await startService('message-store', msEnv(p.store.port));
    },
    async stop() {
      for (const i of p.irc) await i.app.close();
      p.idClient.close();
      p.msClient.close();
      await Promise.allSettled([p.identity.stop(), p.store.stop()]);
      await Promise.allSettled([identityDb.drop(), storeDb.drop(), nats.cleanup()]);
    },
  };
  return p;
}

/** Registers an account and returns its id. */
export async function registerAccount(p: Platform, username: string): Promise<string> {
  const r = await p.idClient.register({
    username,
    password: 'correct horse battery staple 42',
    displayName: '',
    email: '',
    bio: '',
    avatar: '',
    isBot: false,
    clientAddress: '127.0.0.1',
    sshPublicKey: '',
    createSession: false,
    sessionTtlSeconds: 0,
  });
  return r.user!.id;
}

export const guestPrincipal = (nick: string, door = 'ws-messenger'): messagesV1.Principal =>
  principal({ userId: `guest:${nick}`, displayName: nick, guest: true, door });

/** Posts like another door would (PostMessage with a client key). */
export async function postElsewhere(
  p: Platform,
  channelId: string,
  text: string,
  who: messagesV1.Principal = guestPrincipal('Zoë'),
): Promise<messagesV1.Message> {
  const r = await p.msClient.postMessage({
    principal: who,
    message: newMessage({ channelId, text, clientKey: `test:${Math.random()}` }),
  });
  return r.message!;
}
