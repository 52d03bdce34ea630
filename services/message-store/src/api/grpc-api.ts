/** gRPC handlers: thin adapters from hubbub.messages.v1 to MessageService (errors map in @hubbub/grpc). */
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { implement, mapErrors } from '@hubbub/grpc';
import { messagesV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import { toStoreError } from '../app/message-service';
import type { MessageService } from '../app/message-service';

export const MESSAGE_STORE_SERVICE_NAME = 'hubbub.messages.v1.MessageStoreService';
export const TESTING_SERVICE_NAME = 'hubbub.messages.v1.MessageStoreTestingService';

export function messageStoreGrpc(
  svc: MessageService,
  log: Logger,
): { name: string; definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const def = messagesV1.MessageStoreServiceService;
  return {
    name: MESSAGE_STORE_SERVICE_NAME,
    definition: def,
    implementation: implement(
      def,
      // Database errors of reads as well as writes become UNAVAILABLE (connection lost, PostgreSQL restarting) or
      // DEADLINE_EXCEEDED `QUERY_TIMEOUT` (statement_timeout) instead of INTERNAL, so callers know a retry may work.
      mapErrors<typeof def>(
        {
          createChannel: (r) => svc.createChannel(r),
          ensurePublicChannels: (r) => svc.ensurePublicChannels(r),
          lookupChannel: (r) => svc.lookupChannel(r),
          listChannels: (r) => svc.listChannels(r),
          updateChannel: (r) => svc.updateChannel(r),
          archiveChannel: (r) => svc.archiveChannel(r),
          joinChannel: (r) => svc.joinChannel(r),
          leaveChannel: (r) => svc.leaveChannel(r),
          addMembers: (r) => svc.addMembers(r),
          removeMember: (r) => svc.removeMember(r),
          openDirect: (r) => svc.openDirect(r),
          markRead: (r) => svc.markRead(r),
          // Events of the batch go out (on NATS) before the reply.
          postMessage: async (r) => {
            const out = await svc.postMessage(r);
            svc.flushEvents();
            return out;
          },
          postMessages: async (r) => {
            const out = await svc.postMessages(r);
            svc.flushEvents();
            return out;
          },
          editMessage: (r) => svc.editMessage(r),
          deleteMessage: (r) => svc.deleteMessage(r),
          getMessage: (r) => svc.getMessage(r),
          listMessages: (r) => svc.listMessages(r),
          sliceMessages: (r) => svc.sliceMessages(r),
          listChanges: (r) => svc.listChanges(r),
          searchMessages: (r) => svc.searchMessages(r),
          listTags: (r) => svc.listTags(r),
          postOneliner: (r) => svc.postOneliner(r),
          listOneliners: (r) => svc.listOneliners(r),
        },
        toStoreError,
      ),
      log,
    ),
  };
}

/**
 * Test-only seeding (issue #4: "a path that is not reachable in production builds"). server.ts registers
 * it only when NODE_ENV=test AND MESSAGE_STORE_ENABLE_TEST_SEED=1; otherwise the method does not exist on
 * the server and callers get UNIMPLEMENTED.
 */
export function testingGrpc(
  svc: MessageService,
  log: Logger,
): { name: string; definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const def = messagesV1.MessageStoreTestingServiceService;
  return {
    name: TESTING_SERVICE_NAME,
    definition: def,
    implementation: implement(def, { seedMessages: (r) => svc.seedMessagesForTests(r) }, log),
  };
}

/** Whether the test seeding RPC may be registered. */
export function testSeedEnabled(cfg: { nodeEnv: string; enableTestSeed: boolean }): boolean {
  return cfg.nodeEnv === 'test' && cfg.enableTestSeed;
}
