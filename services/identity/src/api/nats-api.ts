/**
 * The doors' hot path for token checks over NATS request/reply (docs/adr/0004): the `verify-token` endpoint of
 * the identity NATS service, subject `<prefix>.rpc.identity.verify`, queue group `identity`.
 *
 * Request: binary VerifyTokenRequest. Reply: binary VerifyTokenResponse from the same `IdentityApp.verifyToken`
 * the gRPC service calls (same checks, same token cache), or a services-framework error whose code is the gRPC
 * canonical code and whose description is `REASON: message` (e.g. UNAUTHENTICATED `TOKEN_INVALID: …`).
 * Hostile input (undecodable bytes, too many calls at once) gets an error reply with a stable reason and is
 * logged (rate-limited); the handler never throws.
 */
import { AppError, Code, codeName, errors } from '@hubbub/errors';
import { respondAppError, respondBytes } from '@hubbub/nats';
import type { Replyable, Service } from '@hubbub/nats';
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

export type NatsCallResult = 'ok' | 'error' | 'refused';

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

/** Serves VerifyToken on NATS; returns the handler (tests drive it directly). */
export function addVerifyEndpoint(
  natsSvc: Service,
  app: Pick<IdentityApp, 'verifyToken'>,
  o: VerifyEndpointOptions,
): (m: Replyable) => Promise<void> {
  const handle = verifyHandler(app, o);
  natsSvc.addEndpoint(VERIFY_ENDPOINT, {
    subject: o.subject,
    queue: VERIFY_QUEUE,
    handler: (err, m) => {
      if (err) {
        o.log.warn({ err, code: NatsLogCode.Endpoint }, 'verify-token endpoint subscription error');
        return;
      }
      void handle(m);
    },
    metadata: {
      request: 'hubbub.identity.v1.VerifyTokenRequest',
      reply: 'hubbub.identity.v1.VerifyTokenResponse',
    },
  });
  return handle;
}

/** The handler alone (no subscription). */
export function verifyHandler(
  app: Pick<IdentityApp, 'verifyToken'>,
  o: VerifyEndpointOptions,
): (m: Replyable) => Promise<void> {
  let inFlight = 0;
  const logEvery = o.badRequestLogIntervalMs ?? 1_000;
  let lastBadLogAt = -Infinity;
  let badSuppressed = 0;
  const badRequest = (err: unknown, bytes: number): void => {
    const now = Date.now();
    if (now - lastBadLogAt < logEvery) {
      badSuppressed++;
      return;
    }
    lastBadLogAt = now;
    o.log.warn(
      { err, code: NatsLogCode.BadRequest, bytes, suppressed: badSuppressed },
      'undecodable VerifyTokenRequest on NATS',
    );
    badSuppressed = 0;
  };

  return async (m: Replyable): Promise<void> => {
    try {
      if (inFlight >= o.maxInFlight) {
        o.onCall?.('refused', 'RESOURCE_EXHAUSTED', 0);
        respondAppError(m, errors.resourceExhausted('BUSY', 'too many VerifyToken calls in flight; use gRPC or retry'));
        return;
      }
      let req: identityV1.VerifyTokenRequest;
      try {
        req = identityV1.VerifyTokenRequest.decode(m.data);
      } catch (err) {
        o.onCall?.('refused', 'INVALID_ARGUMENT', 0);
        badRequest(err, m.data.length);
        respondAppError(m, errors.invalidArgument('BAD_REQUEST', 'not a VerifyTokenRequest'));
        return;
      }
      inFlight++;
      const started = performance.now();
      try {
        const out = identityV1.VerifyTokenResponse.encode(await app.verifyToken(req)).finish();
        o.onCall?.('ok', 'OK', (performance.now() - started) / 1000);
        respondBytes(m, out);
      } catch (e) {
        const err = AppError.from(e);
        o.onCall?.('error', codeName(err.code), (performance.now() - started) / 1000);
        if (err.code === Code.INTERNAL)
          o.log.error({ err: e, code: NatsLogCode.Internal }, 'VerifyToken over NATS failed');
        respondAppError(m, err);
      } finally {
        inFlight--;
      }
    } catch (e) {
      // Only a throwing hook or logger gets here; the caller then times out and falls back to gRPC.
      o.log.error({ err: e, code: NatsLogCode.Internal }, 'verify-token handler failed');
    }
  };
}
