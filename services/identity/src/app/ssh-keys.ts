/**
 * OpenSSH public keys: one `authorized_keys` line, `<type> <base64> [comment]` (RFC 4253 §6.6
 * blob, RFC 5656 for ECDSA, RFC 8709 for Ed25519). Accepted: ssh-ed25519, ecdsa-sha2-nistp256/
 * 384/521, ssh-rsa with a modulus of at least 2048 bits. Refused: DSA, certificates, security-key
 * types. Points and moduli are checked by node:crypto, so a blob that parses is a usable key.
 * Fingerprints are `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { isSafeLine } from './usernames';

export const MAX_SSH_KEY_LINE_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;

export const SSH_KEY_INVALID_TEXT = 'Not a valid SSH public key';
export const SSH_KEY_TYPE_TEXT = 'Key type not allowed (use ed25519, ecdsa or rsa of at least 2048 bits)';

export interface ParsedSshKey {
  readonly algorithm: string;
  readonly blob: Buffer;
  readonly comment: string;
  readonly fingerprint: string;
  /** RSA modulus bits, 0 otherwise. */
  readonly bits: number;
}

export type SshKeyParse =
  | { ok: true; key: ParsedSshKey }
  | { ok: false; reason: 'SSH_KEY_INVALID' | 'SSH_KEY_TYPE_NOT_ALLOWED'; message: string };

const ECDSA: Record<string, { curve: string; pointBytes: number; jwkCrv: string; coord: number }> = {
  'ecdsa-sha2-nistp256': { curve: 'nistp256', pointBytes: 65, jwkCrv: 'P-256', coord: 32 },
  'ecdsa-sha2-nistp384': { curve: 'nistp384', pointBytes: 97, jwkCrv: 'P-384', coord: 48 },
  'ecdsa-sha2-nistp521': { curve: 'nistp521', pointBytes: 133, jwkCrv: 'P-521', coord: 66 },
};
const ALLOWED = new Set(['ssh-ed25519', 'ssh-rsa', ...Object.keys(ECDSA)]);
const KNOWN_REFUSED = /^(ssh-dss|.*-cert-v01@openssh\.com|sk-.*@openssh\.com|ssh-ed448|x509v3-.*)$/;

class Reader {
  private off = 0;
  constructor(private readonly b: Buffer) {}
  string(): Buffer {
    if (this.off + 4 > this.b.length) throw new Error('truncated');
    const n = this.b.readUInt32BE(this.off);
    this.off += 4;
    if (n > this.b.length - this.off) throw new Error('truncated');
    const s = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return s;
  }
  get done(): boolean {
    return this.off === this.b.length;
  }
}

export function sshFingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

const invalid = (why: string): SshKeyParse => ({
  ok: false,
  reason: 'SSH_KEY_INVALID',
  message: `${SSH_KEY_INVALID_TEXT}: ${why}`,
});
const notAllowed = (why: string): SshKeyParse => ({
  ok: false,
  reason: 'SSH_KEY_TYPE_NOT_ALLOWED',
  message: `${SSH_KEY_TYPE_TEXT}: ${why}`,
});

function unsignedBytes(mpint: Buffer): Buffer {
  let i = 0;
  while (i < mpint.length - 1 && mpint[i] === 0) i++;
  return mpint.subarray(i);
}

function bitLength(n: Buffer): number {
  const u = unsignedBytes(n);
  if (u.length === 0 || (u.length === 1 && u[0] === 0)) return 0;
  return (u.length - 1) * 8 + (32 - Math.clz32(u[0]!));
}

/** Parses and validates a wire-format public key blob. */
export function parseSshKeyBlob(blob: Buffer, comment = ''): SshKeyParse {
  let type: string;
  try {
    const r = new Reader(blob);
    type = r.string().toString('latin1');
    if (!ALLOWED.has(type)) {
      return KNOWN_REFUSED.test(type) ? notAllowed(type) : invalid(`unknown key type "${type.slice(0, 40)}"`);
    }
    let bits = 0;
    if (type === 'ssh-ed25519') {
      const pk = r.string();
      if (pk.length !== 32) return invalid('an ed25519 key has 32 bytes');
      if (!r.done) return invalid('trailing bytes in the key');
      createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pk.toString('base64url') }, format: 'jwk' });
    } else if (type === 'ssh-rsa') {
      const e = r.string();
      const n = r.string();
      if (!r.done) return invalid('trailing bytes in the key');
      if ((n[0] ?? 0) & 0x80 || (e[0] ?? 0) & 0x80) return invalid('negative RSA parameter');
      bits = bitLength(n);
      if (bits < MIN_RSA_BITS) return notAllowed(`RSA key has ${bits} bits`);
      if (bits > 16384) return invalid('RSA key larger than 16384 bits');
      createPublicKey({
        key: { kty: 'RSA', n: unsignedBytes(n).toString('base64url'), e: unsignedBytes(e).toString('base64url') },
        format: 'jwk',
      });
    } else {
      const spec = ECDSA[type]!;
      const curve = r.string().toString('latin1');
      const q = r.string();
      if (!r.done) return invalid('trailing bytes in the key');
      if (curve !== spec.curve) return invalid(`curve "${curve.slice(0, 20)}" does not match ${type}`);
      if (q.length !== spec.pointBytes || q[0] !== 0x04) return invalid('bad ECDSA point encoding');
      const x = q.subarray(1, 1 + spec.coord);
      const y = q.subarray(1 + spec.coord);
      createPublicKey({
        key: { kty: 'EC', crv: spec.jwkCrv, x: x.toString('base64url'), y: y.toString('base64url') },
        format: 'jwk',
      });
    }
    return {
      ok: true,
      key: { algorithm: type, blob: Buffer.from(blob), comment, fingerprint: sshFingerprint(blob), bits },
    };
  } catch (e) {
    const why =
      e instanceof Error && e.message === 'truncated'
        ? 'the key data is truncated'
        : 'the key data is not a valid public key';
    return invalid(why);
  }
}

/** Parses one OpenSSH public-key line. */
export function parseSshKeyLine(line: string): SshKeyParse {
  if (Buffer.byteLength(line) > MAX_SSH_KEY_LINE_BYTES) return invalid('longer than 16 KiB');
  const t = line.trim();
  if (t === '') return invalid('empty');
  if (/[\r\n]/.test(t)) return invalid('more than one line');
  const parts = t.split(/[ \t]+/);
  const [type, data] = parts;
  const comment = parts.slice(2).join(' ');
  if (type === undefined || data === undefined) return invalid('expected "<type> <base64> [comment]"');
  if (!ALLOWED.has(type)) {
    if (KNOWN_REFUSED.test(type)) return notAllowed(type);
    return invalid(`unknown key type "${type.slice(0, 40)}" (authorized_keys options are not accepted)`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || data.length % 4 !== 0) return invalid('the key data is not base64');
  // The comment is stored and shown in key listings (terminals, web pages): no NUL (PostgreSQL refuses it), no
  // escape sequences or bidi controls.
  if (!isSafeLine(comment)) return invalid('the comment contains control characters');
  const blob = Buffer.from(data, 'base64');
  const r = parseSshKeyBlob(blob, [...comment].slice(0, 200).join(''));
  if (r.ok && r.key.algorithm !== type) return invalid(`the line says ${type} but the key is ${r.key.algorithm}`);
  return r;
}

/** Normalises a fingerprint given as `SHA256:xxx` or bare base64 (padding optional). */
export function normalizeSshFingerprint(fp: string): string | undefined {
  const t = fp
    .trim()
    .replace(/^SHA256:/i, '')
    .replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]{43}$/.test(t)) return undefined;
  return 'SHA256:' + t;
}
