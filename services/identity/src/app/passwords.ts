/**
 * Password hashing with scrypt (node:crypto, async on the libuv pool). The parameters are stored
 * with each hash (`scrypt$ln=15,r=8,p=1$<salt>$<hash>`, base64 without padding), so the cost can
 * be raised later: `needsRehash` tells when a stored hash is weaker than the current setting, and
 * a successful login re-hashes it. Comparison is constant-time. Hashes never leave this service.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/** N=2^15, r=8, p=1: 32 MiB and roughly 50-150 ms per hash on a current server core. */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { logN: 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;

function scrypt(password: string | Buffer, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  const N = 2 ** p.logN;
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, KEY_BYTES, { N, r: p.r, p: p.p, maxmem: 256 * N * p.r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string | Buffer, params: ScryptParams): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, params);
  return `scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

interface Parsed {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function parse(stored: string): Parsed | undefined {
  const m = /^scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(stored);
  if (!m) return undefined;
  const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.logN < 1 || params.logN > 22) return undefined;
  return { params, salt: Buffer.from(m[4]!, 'base64'), key: Buffer.from(m[5]!, 'base64') };
}

/** Constant-time check; false for a malformed stored hash. */
export async function verifyPassword(password: string | Buffer, stored: string): Promise<boolean> {
  const p = parse(stored);
  if (!p) return false;
  const key = await scrypt(password, p.salt, p.params);
  return key.length === p.key.length && timingSafeEqual(key, p.key);
}

/** True when `stored` was made with weaker parameters than `current`. */
export function needsRehash(stored: string, current: ScryptParams): boolean {
  const p = parse(stored);
  if (!p) return true;
  return p.params.logN < current.logN || p.params.r < current.r || p.params.p < current.p;
}
