/**
 * What a database failure means to a caller, the same for every service: the connection is the problem (PostgreSQL
 * restarting or unreachable, the pool unable to connect) → UNAVAILABLE, a retry may work; a statement cancelled by
 * `statement_timeout` → DEADLINE_EXCEEDED `QUERY_TIMEOUT` (nothing of it was committed). Anything else is not a
 * database outage and stays what it was (undefined here).
 */
import { AppError, Code, errors } from '@hubbub/errors';

/** SQLSTATE classes and codes of a lost or refused connection: 08 connection, 57P0x shutdown, 53 resources. */
const UNAVAILABLE_PG = /^(08|57P0|53)/;
const QUERY_CANCELED = '57014';
const UNAVAILABLE_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);
const UNAVAILABLE_TEXT =
  /Connection terminated|timeout exceeded when trying to connect|Timeout acquiring a connection|Client has encountered a connection error/i;

export function dbError(
  e: unknown,
  unavailable: { reason: string; message: string } = {
    reason: 'DATABASE_UNAVAILABLE',
    message: 'database unavailable; retry',
  },
): AppError | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  const code = typeof c === 'string' ? c : undefined;
  if (code === QUERY_CANCELED)
    return new AppError(Code.DEADLINE_EXCEEDED, 'QUERY_TIMEOUT', 'the query took too long', { cause: e });
  if (
    (code !== undefined && (UNAVAILABLE_PG.test(code) || UNAVAILABLE_NET.has(code))) ||
    (e instanceof Error && UNAVAILABLE_TEXT.test(e.message))
  )
    return errors.unavailable(unavailable.reason, unavailable.message, e);
  return undefined;
}
