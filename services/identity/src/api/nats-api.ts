/**
 * The doors' hot path for token checks over NATS request/reply (docs/adr/0004): the `verify-token` endpoint of
 * the identity NATS service, subject `<prefix>.rpc.identity.verify`, queue group `identity`.
 *
 * Request: binary VerifyTokenRequest. Reply: binary VerifyTokenResponse from the same `IdentityApp.verifyToken`
 * the gRPC service calls (same checks, same token cache), or a services-framework error whose code is the gRPC
 * canonical code and whose description is `REASON: message` (e.g. UNAUTHENTICATED `TOKEN_INVALID: …`).
 * Hostile input (undecodable bytes, too many calls at once) gets an error reply with a stable reason and is
 * logged (rate-limited); the handler never throws (@hubbub/nats binaryEndpointHandler).
 */
import { dbError } from '@hubbub/db';
import { addBinaryEndpoint, binaryEndpointHandler } from '@hubbub/nats';
import type { BinaryEndpointOptions, EndpointCallResult, Replyable, Service } from '@hubbub/nats';
import { identityV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { IdentityApp } from '../app/identity';

export const VERIFY_ENDPOINT = 'verify-token';
export const VERIFY_QUEUE = 'identity';

/** Log codes (stable: operators grep for them). */
export const NatsLogCode = {
  BadRequest: 'IDENTITY_NATS_BAD_REQUEST',
  Internal: 'IDENTITY_NATS_INTERNAL',
  Endpoint: 'IDENTITY_NATS_ENDPOINT',
} as const;

export type NatsCallResult = EndpointCallResult;

export interface VerifyEndpointOptions {
  readonly subject: string;
  readonly log: Logger;
  /** Calls handled at once; more get RESOURCE_EXHAUSTED `BUSY` (the door falls back to gRPC). 0 refuses all. */
  readonly maxInFlight: number;
  /**
   * Called once per call: `refused` (BUSY, undecodable) before the app ran; `ok`/`error` after, with the gRPC
   * code name and the app's time in seconds.
   */
  readonly onCall?: (result: NatsCallResult, code: string, seconds: number) => void;
  /** Shortest time between two BAD_REQUEST warnings (the ones in between are counted); default 1 s. */
  readonly badRequestLogIntervalMs?: number;
}

function endpoint(
  app: Pick<IdentityApp, 'verifyToken' | 'verifyTokenCached'>,
  o: VerifyEndpointOptions,
): BinaryEndpointOptions<identityV1.VerifyTokenRequest, identityV1.VerifyTokenResponse> {
  return {
    name: VERIFY_ENDPOINT,
    subject: o.subject,
    queue: VERIFY_QUEUE,
    request: identityV1.VerifyTokenRequest,
    response: identityV1.VerifyTokenResponse,
    types: { package: 'hubbub.identity.v1', request: 'VerifyTokenRequest', reply: 'VerifyTokenResponse' },
    call: 'VerifyToken',
    // Database failures as over gRPC (UNAVAILABLE / DEADLINE_EXCEEDED QUERY_TIMEOUT), not INTERNAL.
    handle: async (req) => {
      try {
        return await app.verifyToken(req);
      } catch (e) {
        throw dbError(e) ?? e;
      }
    },
    // A cached token is answered in the same turn with its memoized reply bytes (no promise, no encoding).
    fast: (req) => app.verifyTokenCached(req),
    log: o.log,
    logCodes: { badRequest: NatsLogCode.BadRequest, internal: NatsLogCode.Internal, endpoint: NatsLogCode.Endpoint },
    maxInFlight: o.maxInFlight,
    badRequestLogIntervalMs: o.badRequestLogIntervalMs ?? 1_000,
    ...(o.onCall ? { onCall: o.onCall } : {}),
  };
}

/** Serves VerifyToken on NATS; returns the handler (tests drive it directly). */
export function addVerifyEndpoint(
  natsSvc: Service,
  app: Pick<IdentityApp, 'verifyToken' | 'verifyTokenCached'>,
  o: VerifyEndpointOptions,
): (m: Replyable) => Promise<void> | undefined {
  return addBinaryEndpoint(natsSvc, endpoint(app, o));
}

/** The handler alone (no subscription). */
export function verifyHandler(
  app: Pick<IdentityApp, 'verifyToken' | 'verifyTokenCached'>,
  o: VerifyEndpointOptions,
): (m: Replyable) => Promise<void> | undefined {
  return binaryEndpointHandler(endpoint(app, o));
}
