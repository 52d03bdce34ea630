/**
 * p2p key bundles (specs/p2p.md §3.2), verified and never re-encoded:
 *
 *   0      1  version 0x01
 *   1      1  name length L (2-24)
 *   2      L  name (UTF-8, ^[A-Za-z][A-Za-z0-9_-]{1,23}$)
 *   2+L   32  Ed25519 public key
 *   34+L  32  X25519 public key
 *   66+L   8  created_at, ms since the epoch, big-endian
 *   74+L  64  Ed25519 signature over "hubbub-p2p/bundle/v1\0" ‖ bytes [0, 74+L)
 *
 * Fingerprint = SHA-256(Ed25519 public key), 64 hex digits.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';

export const BUNDLE_SIG_CONTEXT = Buffer.from('hubbub-p2p/bundle/v1\0', 'latin1');
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{1,23}$/;
const MAX_DATE_MS = 8.64e15;

export interface Bundle {
  readonly name: string;
  readonly ed25519: Buffer;
  readonly x25519: Buffer;
  readonly createdAtMs: number;
  readonly fingerprint: string;
  readonly raw: Buffer;
}

export type BundleParse =
  { ok: true; bundle: Bundle } | { ok: false; reason: 'BUNDLE_INVALID' | 'BUNDLE_SIGNATURE_INVALID'; message: string };

export function e2eFingerprint(ed25519: Buffer): string {
  return createHash('sha256').update(ed25519).digest('hex');
}

/** Normalises `3475 0F98 …` / `34750f98…` to 64 lowercase hex digits. */
export function normalizeE2EFingerprint(s: string): string | undefined {
  const t = s.replace(/[\s:]/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(t) ? t : undefined;
}

export function parseBundle(raw: Buffer): BundleParse {
  const bad = (message: string): BundleParse => ({ ok: false, reason: 'BUNDLE_INVALID', message });
  if (raw.length < 2) return bad('bundle too short');
  if (raw[0] !== 1) return bad(`unsupported bundle version ${raw[0]}`);
  const L = raw[1]!;
  if (L < 2 || L > 24) return bad('bundle name length must be 2-24');
  if (raw.length !== 138 + L) return bad(`bundle must be ${138 + L} bytes for a ${L}-byte name, got ${raw.length}`);
  const name = raw.subarray(2, 2 + L).toString('utf8');
  if (!NAME_RE.test(name)) return bad('bundle name is not a valid username');
  const ed25519 = Buffer.from(raw.subarray(2 + L, 34 + L));
  const x25519 = Buffer.from(raw.subarray(34 + L, 66 + L));
  const createdAt = raw.readBigUInt64BE(66 + L);
  // The last time a Date (and the stored timestamptz) can hold is 8.64e15 ms; beyond it the insert would fail.
  if (createdAt > BigInt(MAX_DATE_MS)) return bad('bundle created_at out of range');
  const sig = raw.subarray(74 + L, 138 + L);
  let ok = false;
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: ed25519.toString('base64url') },
      format: 'jwk',
    });
    ok = verify(null, Buffer.concat([BUNDLE_SIG_CONTEXT, raw.subarray(0, 74 + L)]), key, sig);
  } catch {
    ok = false;
  }
  if (!ok) return { ok: false, reason: 'BUNDLE_SIGNATURE_INVALID', message: 'the bundle signature does not verify' };
  return {
    ok: true,
    bundle: {
      name,
      ed25519,
      x25519,
      createdAtMs: Number(createdAt),
      fingerprint: e2eFingerprint(ed25519),
      raw: Buffer.from(raw),
    },
  };
}
