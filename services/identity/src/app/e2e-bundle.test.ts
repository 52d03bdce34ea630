import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { BUNDLE_SIG_CONTEXT, normalizeE2EFingerprint, parseBundle } from './e2e-bundle';

// specs/p2p.md Appendix A: alice's bundle.
const ALICE = Buffer.from(
  '0105616c6963658a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3' +
    '748801b40f6f5cce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745' +
    'ba05870e587d590000018bcfe5680081f5460e6383c26f0eaf6c4879d7405be5' +
    'bd9a16809df98c16ca95b0ffa82df358e816321caff691518f0447de9324b554' +
    '9d7ec75f9257be620887fe323f9000',
  'hex',
);

/** Builds a signed bundle from a 32-byte Ed25519 seed. */
function makeBundle(
  name: string,
  seed: Buffer,
  x25519: Buffer = Buffer.alloc(32, 9),
  createdAtMs = 1_700_000_000_000,
): Buffer {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const priv = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x!, 'base64url');
  const n = Buffer.from(name, 'utf8');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(createdAtMs));
  const body = Buffer.concat([Buffer.from([1, n.length]), n, pub, x25519, ts]);
  const sig = sign(null, Buffer.concat([BUNDLE_SIG_CONTEXT, body]), priv);
  return Buffer.concat([body, sig]);
}

describe('parseBundle', () => {
  it('verifies the spec vector (alice)', () => {
    const r = parseBundle(ALICE);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.bundle.name).toBe('alice');
    expect(r.bundle.createdAtMs).toBe(1_700_000_000_000);
    expect(r.bundle.ed25519.toString('hex')).toBe('8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c');
    expect(r.bundle.fingerprint).toBe(
      normalizeE2EFingerprint('3475 0F98 BD59 FCFC 946D A45A AABE 933B E154 A4B5 094E 1C4A BF42 8665 05F3 C97E'),
    );
  });
  it('builds the same bundle from the spec seed', () => {
    const x = Buffer.from('ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59', 'hex');
    expect(makeBundle('alice', Buffer.alloc(32, 1), x).equals(ALICE)).toBe(true);
  });
  it('refuses a flipped signature byte', () => {
    const b = Buffer.from(ALICE);
    b[b.length - 1]! ^= 1;
    expect(parseBundle(b)).toMatchObject({ ok: false, reason: 'BUNDLE_SIGNATURE_INVALID' });
  });
  it('refuses a changed name (signature covers it)', () => {
    const b = Buffer.from(ALICE);
    b[2] = 'A'.charCodeAt(0);
    expect(parseBundle(b)).toMatchObject({ ok: false, reason: 'BUNDLE_SIGNATURE_INVALID' });
  });
  it('refuses a created_at no Date can hold, accepts the last one', () => {
    const seed = Buffer.alloc(32, 3);
    expect(parseBundle(makeBundle('alice', seed, undefined, 8.64e15 + 1))).toMatchObject({
      ok: false,
      reason: 'BUNDLE_INVALID',
    });
    expect(parseBundle(makeBundle('alice', seed, undefined, 8.64e15))).toMatchObject({ ok: true });
  });
  it.each([
    [Buffer.alloc(0), 'too short'],
    [Buffer.concat([Buffer.from([2]), ALICE.subarray(1)]), 'version'],
    [ALICE.subarray(0, 100), 'must be 143 bytes'],
    [Buffer.concat([ALICE, Buffer.from([0])]), 'must be 143 bytes'],
  ])('refuses malformed bundles (%#: %s)', (b, why) => {
    const r = parseBundle(b);
    expect(r).toMatchObject({ ok: false, reason: 'BUNDLE_INVALID' });
    if (!r.ok) expect(r.message).toContain(why);
  });
});
