/**
 * gRPC server bootstrap: async handlers, the single AppError ↔ status mapping, a logging
 * interceptor (one line per failed call, debug per call), and grpc.health.v1 on every server.
 */
import { Metadata, Server, ServerCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import type {
  ServerUnaryCall,
  ServiceDefinition,
  UntypedServiceImplementation,
  sendUnaryData,
  ServerWritableStream,
} from '@grpc/grpc-js';
import { AppError, Code, codeName, toGrpcStatus } from '@hubbub/errors';
import type { HealthCheckRequest, HealthCheckResponse } from '@hubbub/proto';
import { HealthCheckResponse_ServingStatus, HealthService } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';

/** What a handler learns about its call besides the request. */
export interface CallContext {
  readonly metadata: Metadata;
  readonly peer: string;
  readonly deadline: Date | number;
  readonly log: Logger;
  /** Whether the client has gone away (cancelled or deadline passed). */
  readonly cancelled: () => boolean;
}

type UnaryDef = {
  readonly path: string;
  readonly requestStream: false;
  readonly responseStream: false;
  readonly requestDeserialize: (b: Buffer) => unknown;
  readonly responseSerialize: (v: never) => Buffer;
};

/** The async shape of a ts-proto service definition's unary methods. */
export type AsyncServiceImpl<D> = {
  [K in keyof D]: D[K] extends {
    requestDeserialize: (b: Buffer) => infer Req;
    responseSerialize: (v: infer Res) => Buffer;
    responseStream: false;
  }
    ? (req: Req, ctx: CallContext) => Promise<Res>
    : never;
};

/** One handler of an AsyncServiceImpl, untyped (for wrappers that treat every method alike). */
export type AnyHandler = (req: unknown, ctx: CallContext) => Promise<unknown>;

/** Every handler of `impl` replaced by `wrap(name, handler)`: one loop for timing, error mapping and the like. */
export function wrapHandlers<D>(
  impl: AsyncServiceImpl<D>,
  wrap: (name: string, handler: AnyHandler) => AnyHandler,
): AsyncServiceImpl<D> {
  const out: Record<string, AnyHandler> = {};
  for (const [name, fn] of Object.entries(impl as Record<string, AnyHandler>)) out[name] = wrap(name, fn);
  return out as AsyncServiceImpl<D>;
}

/** Every handler's failure through `map` (e.g. database errors to UNAVAILABLE) before `implement` answers it. */
export function mapErrors<D>(impl: AsyncServiceImpl<D>, map: (e: unknown) => unknown): AsyncServiceImpl<D> {
  return wrapHandlers(impl, (_name, fn) => async (req, ctx) => {
    try {
      return await fn(req, ctx);
    } catch (e) {
      throw map(e);
    }
  });
}

function toMetadata(trailers: ReadonlyArray<readonly [string, string]>): Metadata {
  const md = new Metadata();
  for (const [k, v] of trailers) md.set(k, v);
  return md;
}

/** Wraps async handlers into grpc-js handlers with error mapping and logging. */
export function implement<D extends Record<string, UnaryDef>>(
  definition: D,
  impl: AsyncServiceImpl<D>,
  log: Logger,
): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const name of Object.keys(definition)) {
    const handler = (impl as Record<string, (req: unknown, ctx: CallContext) => Promise<unknown>>)[name];
    if (!handler) throw new Error(`handler ${name} missing`);
    const path = definition[name]!.path;
    out[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const t0 = performance.now();
      const ctx: CallContext = {
        metadata: call.metadata,
        // Computed only when a handler asks (most never do): the hot path stays allocation-light.
        get peer() {
          return call.getPeer();
        },
        deadline: call.getDeadline(),
        log,
        cancelled: () => call.cancelled,
      };
      handler(call.request, ctx).then(
        (res) => {
          log.trace({ path, ms: performance.now() - t0 }, 'grpc call');
          callback(null, res);
        },
        (e: unknown) => {
          const err = AppError.from(e);
          const st = toGrpcStatus(err);
          if (err.code === Code.INTERNAL || err.code === Code.UNKNOWN) {
            log.error({ path, err: err.cause ?? err, code: err.reason }, 'grpc call failed');
          } else {
            log.debug({ path, code: codeName(err.code), reason: err.reason }, 'grpc call refused');
          }
          callback({ code: st.code, details: st.details, metadata: toMetadata(st.trailers) }, null);
        },
      );
    };
  }
  return out;
}

/** grpc.health.v1 with a per-service status map; "" is the whole server. */
export class HealthRegistry {
  private readonly status = new Map<string, HealthCheckResponse_ServingStatus>();
  private readonly watchers = new Set<{
    service: string;
    call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;
  }>();

  set(service: string, serving: boolean): void {
    const s = serving ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING;
    this.status.set(service, s);
    for (const w of this.watchers) if (w.service === service) w.call.write({ status: s });
  }

  /** Marks every service NOT_SERVING (first step of a graceful shutdown) and ends Watch streams. */
  shutdown(): void {
    for (const k of this.status.keys()) this.set(k, false);
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  implementation(): UntypedServiceImplementation {
    return {
      check: (
        call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        cb: sendUnaryData<HealthCheckResponse>,
      ) => {
        const s = this.status.get(call.request.service);
        if (s === undefined) cb({ code: GrpcStatus.NOT_FOUND, details: 'unknown service' }, null);
        else cb(null, { status: s });
      },
      watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const w = { service: call.request.service, call };
        this.watchers.add(w);
        call.write({ status: this.status.get(w.service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN });
        call.on('cancelled', () => this.watchers.delete(w));
      },
    };
  }
}

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  readonly services: ReadonlyArray<{
    name: string;
    definition: ServiceDefinition;
    implementation: UntypedServiceImplementation;
  }>;
  /** Max inbound message size; default 4 MiB (grpc-js default). */
  readonly maxReceiveMessageBytes?: number;
}

export interface GrpcServer {
  readonly server: Server;
  readonly port: number;
  readonly health: HealthRegistry;
  /** Graceful: NOT_SERVING, stop accepting, wait for in-flight calls (bounded), then force. */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_GRPC_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

export async function startGrpcServer(o: GrpcServerOptions): Promise<GrpcServer> {
  const server = new Server({
    'grpc.max_receive_message_length': o.maxReceiveMessageBytes ?? DEFAULT_GRPC_MAX_RECEIVE_BYTES,
    'grpc.keepalive_permit_without_calls': 1,
    // channelz bookkeeping costs on every call and nothing here reads it.
    'grpc.enable_channelz': 0,
  });
  const health = new HealthRegistry();
  server.addService(HealthService, health.implementation());
  for (const s of o.services) server.addService(s.definition, s.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host}:${o.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  health.set('', true);
  for (const s of o.services) health.set(s.name, true);
  o.log.info({ port }, 'grpc listening');
  return {
    server,
    port,
    health,
    close: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        health.shutdown();
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        t.unref();
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
