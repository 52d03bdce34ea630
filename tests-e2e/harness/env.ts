/**
 * One e2e environment: a fresh database per data owner on the test PostgreSQL server, a unique NATS
 * prefix on the test NATS server, and the real processes. Everything is removed by `destroy()`.
 */
import { createClient } from '@hubbub/grpc';
import type { PromiseClient } from '@hubbub/grpc';
import { messagesV1 } from '@hubbub/proto';
import { createTestDatabase, createTestNats } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import type { Stack, StackOptions } from './stack';
import { startStack } from './stack';

export type StoreClient = PromiseClient<typeof messagesV1.MessageStoreServiceService>;

export interface E2eEnv {
  readonly stack: Stack;
  readonly store: StoreClient;
  readonly nats: TestNats;
  destroy(): Promise<void>;
}

export async function startE2eEnv(extra: Partial<StackOptions> = {}): Promise<E2eEnv> {
  const nats = createTestNats();
  const dbs: TestDatabase[] = [await createTestDatabase(), await createTestDatabase()];
  let stack: Stack;
  try {
    stack = await startStack({
      natsUrl: nats.url,
      natsPrefix: nats.prefix,
      identityDbUrl: dbs[0]!.url,
      messagesDbUrl: dbs[1]!.url,
      ...extra,
    });
  } catch (e) {
    for (const d of dbs) await d.drop();
    await nats.cleanup();
    throw e;
  }
  const store = createClient(messagesV1.MessageStoreServiceService, stack.messageStoreAddr, { deadlineMs: 5_000 });
  return {
    stack,
    store,
    nats,
    destroy: async () => {
      store.close();
      await stack.stop();
      for (const d of dbs) await d.drop();
      await nats.cleanup();
    },
  };
}

/** A principal for posts made "by another door" straight through message-store. */
export function otherDoorGuest(nick: string): messagesV1.Principal {
  return {
    userId: `guest:${nick}`,
    displayName: nick,
    kind: messagesV1.PrincipalKind.PRINCIPAL_KIND_GUEST,
    sysop: false,
    door: 'e2e-other-door',
  };
}
