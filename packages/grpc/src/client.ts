/**
 * Promise clients from ts-proto service definitions: every call has a deadline (default
 * DEFAULT_DEADLINE_MS), errors come back as AppError (the one mapping in @hubbub/errors), and
 * UNAVAILABLE may be retried when the caller says the call is safe to repeat.
 */
import { Client, Metadata, credentials, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { AppError, Code, errors, fromGrpcStatus } from '@hubbub/errors';

export const DEFAULT_DEADLINE_MS = 5_000;

export interface CallOptions {
  readonly deadlineMs?: number;
  readonly metadata?: Metadata;
  /** Attempts on UNAVAILABLE (only for idempotent calls). Default 1 (no retry). */
  readonly attempts?: number;
}

export type PromiseClient<D> = {
  [K in keyof D]: D[K] extends {
    requestSerialize: (v: infer Req) => Buffer;
    responseDeserialize: (b: Buffer) => infer Res;
    responseStream: false;
  }
    ? (req: Req, opts?: CallOptions) => Promise<Res>
    : never;
} & { close(): void; waitForReady(deadlineMs?: number): Promise<void> };

type AnyDef = Record<
  string,
  {
    path: string;
    requestStream: boolean;
    responseStream: boolean;
    requestSerialize: (v: never) => Buffer;
    responseDeserialize: (b: Buffer) => unknown;
  }
>;

/**
 * Channel options of every hubbub gRPC client: keepalive, no built-in retries (callers decide what is
 * safe to repeat), and a short reconnect backoff so a restarted server is used again within ~100 ms
 * instead of grpc-js's default 1 s.
 */
export const DEFAULT_CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.enable_channelz': 0,
} as const;

/** A received gRPC error as AppError (code, message, `hubbub-reason` and detail trailers). */
export function serviceErrorToAppError(e: ServiceError): AppError {
  const md = e.metadata ?? new Metadata();
  const keys = Object.keys(md.getMap());
  return fromGrpcStatus(
    e.code,
    e.details,
    (k) => {
      const v = md.get(k)[0];
      return v === undefined ? undefined : String(v);
    },
    keys,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createClient<D extends AnyDef>(
  definition: D,
  address: string,
  defaults: { deadlineMs?: number } = {},
): PromiseClient<D> {
  const client = new Client(address, credentials.createInsecure(), DEFAULT_CHANNEL_OPTIONS);
  const out: Record<string, unknown> = {
    close: () => client.close(),
    waitForReady: (deadlineMs = DEFAULT_DEADLINE_MS) =>
      new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + deadlineMs, (err) =>
          err ? reject(errors.unavailable('GRPC_NOT_READY', `${address} not ready`, err)) : resolve(),
        ),
      ),
  };
  for (const [name, m] of Object.entries(definition)) {
    if (m.requestStream || m.responseStream) continue;
    const once = (req: unknown, opts: CallOptions): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + (opts.deadlineMs ?? defaults.deadlineMs ?? DEFAULT_DEADLINE_MS);
        client.makeUnaryRequest(
          m.path,
          m.requestSerialize as (v: unknown) => Buffer,
          m.responseDeserialize,
          req,
          opts.metadata ?? new Metadata(),
          { deadline },
          (err, res) => (err ? reject(serviceErrorToAppError(err)) : resolve(res)),
        );
      });
    out[name] = async (req: unknown, opts: CallOptions = {}) => {
      const attempts = Math.max(1, opts.attempts ?? 1);
      for (let i = 1; ; i++) {
        try {
          return await once(req, opts);
        } catch (e) {
          const retryable = e instanceof AppError && e.code === Code.UNAVAILABLE;
          if (!retryable || i >= attempts) throw e;
          await sleep(Math.min(1_000, 25 * 2 ** i));
        }
      }
    };
  }
  return out as PromiseClient<D>;
}

export { GrpcStatus };
