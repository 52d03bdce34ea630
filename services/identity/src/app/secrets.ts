/**
 * Secrets this service issues: session tokens (32 random bytes, base64url, stored as SHA-256)
 * and app passwords (12 characters of Crockford base32 = 60 bits, stored as a salted scrypt hash;
 * verification is throttled like passwords).
 */
import * as crypto from 'node:crypto';
import { createHash, randomBytes, randomInt } from 'node:crypto';

export const TOKEN_BYTES = 32;

export function newSessionToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Only hashes ever reach the database. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * hashToken(token) in base64: the token cache's key (the VerifyToken hot path). The one-shot crypto.hash (Node
 * 20.12+) creates no Hash object: each createHash() is a C++ object behind a weak handle, and thousands of those
 * dying per young-generation GC made every scavenge 2-3 ms longer at 10,000 verifications/s.
 */
const oneShotHash = (crypto as { hash?: (alg: string, data: string, enc: 'base64') => string }).hash;
export function tokenHashBase64(token: string): string {
  return oneShotHash
    ? oneShotHash('sha256', token, 'base64')
    : createHash('sha256').update(token, 'utf8').digest('base64');
}

/** A syntactically possible token (43 base64url characters). Cheap pre-check before any lookup. */
export function isTokenShaped(token: string): boolean {
  return token.length === 43 && /^[A-Za-z0-9_-]+$/.test(token);
}

/** Crockford base32 alphabet, lowercase: no i, l, o, u. */
export const APP_PASSWORD_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const APP_PASSWORD_LENGTH = 12;

export function newAppPassword(): string {
  let s = '';
  for (let i = 0; i < APP_PASSWORD_LENGTH; i++) s += APP_PASSWORD_ALPHABET[randomInt(APP_PASSWORD_ALPHABET.length)];
  return s;
}

/**
 * Canonical form of a typed app password: case and `-`/space separators ignored, and the usual
 * Crockford confusions mapped (i, l → 1; o → 0). Undefined when it cannot be an app password.
 */
export function normalizeAppPassword(s: string): string | undefined {
  const t = s.toLowerCase().replace(/[-\s]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
  if (t.length !== APP_PASSWORD_LENGTH) return undefined;
  for (const c of t) if (!APP_PASSWORD_ALPHABET.includes(c)) return undefined;
  return t;
}

export const APP_PASSWORD_SCOPES = ['ssh', 'irc', 'ws', 'p2p', 'all'] as const;
export type AppPasswordScope = (typeof APP_PASSWORD_SCOPES)[number];

export function isAppPasswordScope(s: string): s is AppPasswordScope {
  return (APP_PASSWORD_SCOPES as readonly string[]).includes(s);
}

/**
 * Does an app password with `scopes` cover `protocol`? A password scoped `all` covers every protocol; one scoped to
 * protocols covers exactly those. An empty (or unknown) protocol matches no protocol scope: a caller that does not
 * say which protocol it checks for gets only `all` passwords, never a wider access than one that says.
 */
export function scopeAllows(scopes: readonly string[], protocol: string): boolean {
  if (scopes.includes('all')) return true;
  return protocol !== '' && scopes.includes(protocol);
}
