export { createTestDatabase, listTestDatabases } from './postgres';
export type { TestDatabase } from './postgres';
export { createTestNats, listStreamsWithPrefix } from './nats';
export type { TestNats } from './nats';
export { closeServer, listenEphemeral, waitFor } from './net';
export { expectVector, feedThreeWays, hex, randomChunks } from './vectors';
export type { StreamDecoder, VectorCase } from './vectors';
export { leakedHandles, snapshotHandles } from './handles';
export type { HandleSnapshot } from './handles';
