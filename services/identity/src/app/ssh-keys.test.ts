import { generateKeyPairSync } from 'node:crypto';
import { normalizeSshFingerprint, parseSshKeyLine, sshFingerprint } from './ssh-keys';

function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}
function mpint(b64u: string): Buffer {
  let b = Buffer.from(b64u, 'base64url');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return sshString(b);
}

function ed25519Line(comment = 'me@host'): { line: string; blob: Buffer } {
  const { publicKey } = generateKeyPairSync('ed25519');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(x)]);
  return { line: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, blob };
}
function rsaLine(bits: number): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const j = publicKey.export({ format: 'jwk' });
  const blob = Buffer.concat([sshString('ssh-rsa'), mpint(j.e!), mpint(j.n!)]);
  return `ssh-rsa ${blob.toString('base64')}`;
}
function ecdsaLine(crv: 'P-256' | 'P-384' | 'P-521', name: string): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: crv });
  const j = publicKey.export({ format: 'jwk' });
  const q = Buffer.concat([Buffer.from([4]), Buffer.from(j.x!, 'base64url'), Buffer.from(j.y!, 'base64url')]);
  const blob = Buffer.concat([sshString(`ecdsa-sha2-${name}`), sshString(name), sshString(q)]);
  return `ecdsa-sha2-${name} ${blob.toString('base64')} c`;
}

describe('parseSshKeyLine', () => {
  it.each(['a\u0000b', 'a\u001b[31mb', 'a\u0007', 'a\u202eb'])(
    'refuses a comment with control characters (%j)',
    (c) => {
      expect(parseSshKeyLine(ed25519Line(c).line)).toMatchObject({ ok: false, reason: 'SSH_KEY_INVALID' });
    },
  );
  it('cuts a long comment at 200 characters without splitting a character', () => {
    const r = parseSshKeyLine(ed25519Line('x' + '😀'.repeat(300)).line);
    expect(r.ok && [...r.key.comment]).toHaveLength(200);
    // A lone surrogate would not survive UTF-8 (it would be stored as U+FFFD).
    expect(r.ok && Buffer.from(r.key.comment).toString()).toBe(r.ok && r.key.comment);
  });
  it('accepts ed25519 with its comment and SHA256 fingerprint', () => {
    const { line, blob } = ed25519Line();
    const r = parseSshKeyLine(line);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.key).toMatchObject({ algorithm: 'ssh-ed25519', comment: 'me@host', bits: 0 });
    expect(r.key.fingerprint).toBe(sshFingerprint(blob));
    expect(r.key.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
  it('accepts ecdsa on all three curves', () => {
    expect(parseSshKeyLine(ecdsaLine('P-256', 'nistp256')).ok).toBe(true);
    expect(parseSshKeyLine(ecdsaLine('P-384', 'nistp384')).ok).toBe(true);
    expect(parseSshKeyLine(ecdsaLine('P-521', 'nistp521')).ok).toBe(true);
  });
  it('accepts rsa 2048 and refuses rsa 1024 with a clear reason', () => {
    const ok = parseSshKeyLine(rsaLine(2048));
    expect(ok.ok && ok.key.bits).toBe(2048);
    expect(parseSshKeyLine(rsaLine(1024))).toMatchObject({
      ok: false,
      reason: 'SSH_KEY_TYPE_NOT_ALLOWED',
      message: expect.stringContaining('1024 bits') as unknown,
    });
  });
  it.each([
    ['', 'empty'],
    ['ssh-ed25519', 'expected'],
    ['ssh-ed25519 !!!notbase64', 'not base64'],
    ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==', 'truncated'],
    ['no-such-type AAAA', 'unknown key type'],
    ['command="x" ssh-ed25519 AAAA', 'options are not accepted'],
  ])('refuses %j as invalid (%s)', (line, why) => {
    const r = parseSshKeyLine(line);
    expect(r).toMatchObject({ ok: false, reason: 'SSH_KEY_INVALID' });
    if (!r.ok) expect(r.message).toContain(why);
  });
  it('refuses DSA and certificates as not allowed', () => {
    expect(parseSshKeyLine('ssh-dss AAAA')).toMatchObject({ ok: false, reason: 'SSH_KEY_TYPE_NOT_ALLOWED' });
    expect(parseSshKeyLine('ssh-ed25519-cert-v01@openssh.com AAAA')).toMatchObject({
      ok: false,
      reason: 'SSH_KEY_TYPE_NOT_ALLOWED',
    });
  });
  it('refuses a line whose type disagrees with the blob', () => {
    const { blob } = ed25519Line();
    expect(parseSshKeyLine(`ssh-rsa ${blob.toString('base64')}`)).toMatchObject({
      ok: false,
      reason: 'SSH_KEY_INVALID',
    });
  });
  it('refuses an ed25519 key of the wrong length', () => {
    const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(31, 1))]);
    expect(parseSshKeyLine(`ssh-ed25519 ${blob.toString('base64')}`)).toMatchObject({
      ok: false,
      reason: 'SSH_KEY_INVALID',
    });
  });
});

describe('normalizeSshFingerprint', () => {
  it('accepts with or without the prefix and padding', () => {
    const fp = sshFingerprint(Buffer.from('x'));
    expect(normalizeSshFingerprint(fp)).toBe(fp);
    expect(normalizeSshFingerprint(fp.slice(7) + '=')).toBe(fp);
    expect(normalizeSshFingerprint('SHA256:short')).toBeUndefined();
  });
});
