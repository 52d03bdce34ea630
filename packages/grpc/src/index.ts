export {
  HealthRegistry,
  DEFAULT_GRPC_MAX_RECEIVE_BYTES,
  implement,
  mapErrors,
  startGrpcServer,
  wrapHandlers,
} from './server';
export type { AnyHandler, AsyncServiceImpl, CallContext, GrpcServer, GrpcServerOptions } from './server';
export { DEFAULT_CHANNEL_OPTIONS, DEFAULT_DEADLINE_MS, createClient, serviceErrorToAppError } from './client';
export type { CallOptions, PromiseClient } from './client';
