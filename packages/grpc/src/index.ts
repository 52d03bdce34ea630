export { HealthRegistry, DEFAULT_GRPC_MAX_RECEIVE_BYTES, implement, startGrpcServer } from './server';
export type { AsyncServiceImpl, CallContext, GrpcServer, GrpcServerOptions } from './server';
export { DEFAULT_CHANNEL_OPTIONS, DEFAULT_DEADLINE_MS, createClient, serviceErrorToAppError } from './client';
export type { CallOptions, PromiseClient } from './client';
