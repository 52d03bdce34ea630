export { connectNats, drainNats, inboxPrefixFor, NATS_PENDING_LIMIT, parseNatsServers } from './connect';
export type { ConnectOptions, NatsConnection } from './connect';
export { decodeJson, encodeJson, publishJson, subscribeJson } from './typed-subject';
export type { JsonCodec } from './typed-subject';
export { claim, openKv, release, renew } from './kv';
export type { KV } from './kv';
export { addOperatorEndpoint, DEFAULT_OPERATOR, MAX_OPERATOR_NAME_BYTES, operatorHandler } from './operator-endpoint';
export type { OperatorEndpoint, OperatorEndpointsOptions, OperatorResult } from './operator-endpoint';
export { registerNatsService } from './service';
export type { Service } from './service';
export {
  addBinaryEndpoint,
  binaryEndpointHandler,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  isNoResponders,
  isTimeout,
  natsRpc,
  replyError,
  respondAppError,
  respondBytes,
  serviceErrorDescription,
  serviceReplyError,
  watchConnection,
} from './rpc';
export type {
  BinaryCodec,
  BinaryEndpointOptions,
  ConnectionWatch,
  EndpointCallResult,
  FallbackCause,
  NatsRpc,
  NatsRpcOptions,
  Replyable,
} from './rpc';
