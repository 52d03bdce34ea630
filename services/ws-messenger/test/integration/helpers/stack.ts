/**
 * The real dependencies of ws-messenger for integration tests: identity and message-store run as
 * child processes from their built `dist/src/main.js` (a service never imports another service),
 * each with a fresh PostgreSQL database, all under a unique NATS prefix; ws-messenger itself runs
 * in-process through `start()` on port 0.
 */
import { createClient } from '@hubbub/grpc';
import type { PromiseClient } from '@hubbub/grpc';
import { identityV1, messagesV1 } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import { ServiceProcess, createTestDatabase, createTestNats, repoRoot } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import { testConfig } from '../../../src/config';
import { start } from '../../../src/server';
import type { WsmServer } from '../../../src/server';

export const ROOT = repoRoot();

export interface Stack {
  readonly nats: TestNats;
  readonly identity: ServiceProcess;
  readonly messageStore: ServiceProcess;
  readonly identityAddr: string;
  readonly messageStoreAddr: string;
  readonly identityDbUrl: string;
  /** For changes made behind message-store's back (no event published). */
  readonly messageStoreDbUrl: string;
  readonly idClient: PromiseClient<typeof identityV1.IdentityServiceService>;
  readonly msgClient: PromiseClient<typeof messagesV1.MessageStoreServiceService>;
  readonly seedClient: PromiseClient<typeof messagesV1.MessageStoreTestingServiceService>;
  /** Starts a ws-messenger in-process against this stack (closed by `close()`); `log` to read its log lines. */
  wsm(env?: Record<string, string>, log?: Logger): Promise<WsmServer>;
  close(): Promise<void>;
}

export async function startStack(
  o: { identityEnv?: Record<string, string>; messageStoreEnv?: Record<string, string> } = {},
): Promise<Stack> {
  const nats = createTestNats();
  const dbs: TestDatabase[] = [];
  const servers: WsmServer[] = [];
  const procs: ServiceProcess[] = [];
  const closeAll = async (): Promise<void> => {
    for (const s of servers.splice(0)) await s.close();
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(dbs.map((d) => d.drop()));
    await nats.cleanup();
  };
  try {
    const [idDb, msgDb] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    dbs.push(idDb, msgDb);
    const common = { NATS_URL: nats.url, NATS_PREFIX: nats.prefix, LOG_LEVEL: 'warn' };
    const identity = ServiceProcess.node('identity', 'services/identity/dist/src/main.js', {
      ...common,
      LOG_LEVEL: 'info',
      DATABASE_URL: idDb.url,
      IDENTITY_PORT: '0',
      IDENTITY_METRICS_PORT: '0',
      IDENTITY_SCRYPT_LOG_N: '4',
      IDENTITY_REGISTRATIONS_PER_HOUR: '1000000',
      IDENTITY_THROTTLE_FREE_FAILURES: '1000',
      ...o.identityEnv,
    });
    const messageStore = ServiceProcess.node('message-store', 'services/message-store/dist/src/main.js', {
      ...common,
      LOG_LEVEL: 'info',
      DATABASE_URL: msgDb.url,
      MESSAGE_STORE_PORT: '0',
      MESSAGE_STORE_METRICS_PORT: '0',
      NODE_ENV: 'test',
      MESSAGE_STORE_ENABLE_TEST_SEED: '1',
      ...o.messageStoreEnv,
    });
    procs.push(identity, messageStore);
    await Promise.all([identity.start(), messageStore.start()]);
    const identityAddr = `127.0.0.1:${identity.port}`;
    const messageStoreAddr = `127.0.0.1:${messageStore.port}`;
    const idClient = createClient(identityV1.IdentityServiceService, identityAddr);
    const msgClient = createClient(messagesV1.MessageStoreServiceService, messageStoreAddr);
    const seedClient = createClient(messagesV1.MessageStoreTestingServiceService, messageStoreAddr);
    // eslint-disable-next-line no-restricted-properties -- WSM_TEST_LOG=debug shows the server's log in a test run
    const log = createLogger({ service: 'ws-messenger', level: process.env['WSM_TEST_LOG'] ?? 'silent' });
    return {
      nats,
      identity,
      messageStore,
      identityAddr,
      messageStoreAddr,
      identityDbUrl: idDb.url,
      messageStoreDbUrl: msgDb.url,
      idClient,
      msgClient,
      seedClient,
      async wsm(env = {}, wsmLog = log) {
        const cfg = testConfig({
          NATS_URL: nats.url,
          NATS_PREFIX: nats.prefix,
          IDENTITY_ADDR: identityAddr,
          MESSAGE_STORE_ADDR: messageStoreAddr,
          WSM_RATE_PER_S: '0',
          WSM_IP_RATE_PER_S: '0',
          WSM_PUBLIC_CHANNELS: '-',
          LOG_LEVEL: 'silent',
          ...env,
        });
        const s = await start(cfg, { log: wsmLog });
        servers.push(s);
        return s;
      },
      async close() {
        idClient.close();
        msgClient.close();
        seedClient.close();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
