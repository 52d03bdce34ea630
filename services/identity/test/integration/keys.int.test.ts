import { generateKeyPairSync, createHash } from 'node:crypto';
import { Code } from '@hubbub/errors';
import { identityV1 } from '@hubbub/proto';
import { MAX_APP_PASSWORDS, MAX_CERTIFICATES, MAX_SSH_KEYS } from '../../src/app/identity';
import { ed25519Line, makeBundle, registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const PW = 'correct horse battery';

describe('identity SSH keys, app passwords, client certificates, E2E directory', () => {
  let h: Harness;
  let alice: identityV1.User;
  let bob: identityV1.User;

  beforeAll(async () => {
    h = await startHarness();
    alice = (await h.client.register(registerReq('alice'))).user!;
    bob = (await h.client.register(registerReq('bob'))).user!;
  });
  afterAll(async () => {
    await h.close();
  });

  describe('SSH keys', () => {
    const k1 = ed25519Line('alice@laptop');
    const k2 = ed25519Line();

    it('adds, lists and authenticates a key for its username only', async () => {
      const added = (await h.client.addSshKey({ userId: alice.id, publicKey: k1.line })).key!;
      expect(added).toMatchObject({ algorithm: 'ssh-ed25519', fingerprint: k1.fingerprint, comment: 'alice@laptop' });
      expect(Buffer.from(added.keyBlob).equals(k1.blob)).toBe(true);
      expect((await h.client.listSshKeys({ userId: alice.id })).keys.map((k) => k.fingerprint)).toEqual([
        k1.fingerprint,
      ]);

      const byBlob = await h.client.authenticateSshKey({
        username: 'ALICE',
        keyBlob: k1.blob,
        fingerprint: '',
        clientAddress: '',
      });
      expect(byBlob.user!.id).toBe(alice.id);
      const byFp = await h.client.authenticateSshKey({
        username: 'alice',
        keyBlob: Buffer.alloc(0),
        fingerprint: k1.fingerprint,
        clientAddress: '',
      });
      expect(Buffer.from(byFp.key!.keyBlob).equals(k1.blob)).toBe(true);
      await expect(
        h.client.authenticateSshKey({ username: 'bob', keyBlob: k1.blob, fingerprint: '', clientAddress: '' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
      await expect(
        h.client.authenticateSshKey({ username: 'alice', keyBlob: k2.blob, fingerprint: '', clientAddress: '' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
      const found = await h.client.findSshKey({ fingerprint: k1.fingerprint });
      expect(found.user!.username).toBe('alice');
      await expect(h.client.findSshKey({ fingerprint: k2.fingerprint })).rejects.toMatchObject({
        code: Code.NOT_FOUND,
      });
    });

    it('gives clear errors for bad keys and duplicates', async () => {
      const cases: [string, string, string][] = [
        ['not a key', 'SSH_KEY_INVALID', 'Not a valid SSH public key'],
        ['ssh-ed25519 AAAA', 'SSH_KEY_INVALID', 'Not a valid SSH public key'],
        ['ssh-dss AAAAB3NzaC1kc3M=', 'SSH_KEY_TYPE_NOT_ALLOWED', 'Key type not allowed'],
      ];
      for (const [line, reason, text] of cases) {
        const e = await h.client.addSshKey({ userId: alice.id, publicKey: line }).catch((x: unknown) => x);
        expect(e).toMatchObject({ code: Code.INVALID_ARGUMENT, reason });
        expect((e as Error).message).toContain(text);
      }
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const j = publicKey.export({ format: 'jwk' });
      const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
      const mp = (s: string): Buffer => {
        let b = Buffer.from(s, 'base64url');
        if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(b.length);
        return Buffer.concat([len, b]);
      };
      const rsa = Buffer.concat([str(Buffer.from('ssh-rsa')), mp(j.e!), mp(j.n!)]);
      await expect(
        h.client.addSshKey({ userId: alice.id, publicKey: `ssh-rsa ${rsa.toString('base64')}` }),
      ).rejects.toMatchObject({
        reason: 'SSH_KEY_TYPE_NOT_ALLOWED',
        message: expect.stringContaining('1024 bits') as unknown,
      });
      await expect(h.client.addSshKey({ userId: bob.id, publicKey: k1.line })).rejects.toMatchObject({
        code: Code.ALREADY_EXISTS,
        reason: 'SSH_KEY_EXISTS',
        message: 'That key is already registered',
      });
    });

    it('removes keys by fingerprint or id', async () => {
      const k = (await h.client.addSshKey({ userId: alice.id, publicKey: k2.line })).key!;
      await h.client.removeSshKey({ userId: alice.id, key: k.id });
      await h.client.removeSshKey({ userId: alice.id, key: k1.fingerprint });
      expect((await h.client.listSshKeys({ userId: alice.id })).keys).toEqual([]);
      await expect(h.client.removeSshKey({ userId: alice.id, key: k1.fingerprint })).rejects.toMatchObject({
        code: Code.NOT_FOUND,
      });
      await expect(
        h.client.authenticateSshKey({ username: 'alice', keyBlob: k1.blob, fingerprint: '', clientAddress: '' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    });

    it('registers a key together with a new account', async () => {
      const k = ed25519Line();
      const r = await h.client.register(registerReq('carol', { sshPublicKey: k.line }));
      const a = await h.client.authenticateSshKey({
        username: 'carol',
        keyBlob: k.blob,
        fingerprint: '',
        clientAddress: '',
      });
      expect(a.user!.id).toBe(r.user!.id);
      await expect(h.client.register(registerReq('dave', { sshPublicKey: k.line }))).rejects.toMatchObject({
        code: Code.ALREADY_EXISTS,
        reason: 'SSH_KEY_EXISTS',
      });
      // The failed registration left no account behind.
      await expect(h.client.getUserByName({ username: 'dave' })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    });
  });

  describe('app passwords', () => {
    let secret = '';

    it('creates a 12-character secret shown once; lists without it', async () => {
      const r = await h.client.createAppPassword({ userId: alice.id, name: 'irc laptop', scopes: ['irc'] });
      secret = r.secret;
      expect(secret).toMatch(/^[0-9a-hjkmnp-tv-z]{12}$/);
      expect(Buffer.byteLength('alice#' + secret)).toBeLessThanOrEqual(32);
      const l = await h.client.listAppPasswords({ userId: alice.id });
      expect(l.appPasswords).toHaveLength(1);
      expect(JSON.stringify(identityV1.ListAppPasswordsResponse.toJSON(l))).not.toContain(secret);
      await expect(
        h.client.createAppPassword({ userId: alice.id, name: 'irc laptop', scopes: [] }),
      ).rejects.toMatchObject({
        code: Code.ALREADY_EXISTS,
      });
      await expect(h.client.createAppPassword({ userId: alice.id, name: 'x', scopes: ['smtp'] })).rejects.toMatchObject(
        {
          code: Code.INVALID_ARGUMENT,
          reason: 'APP_PASSWORD_SCOPE_INVALID',
        },
      );
    });

    it('verifies name + app password (case-insensitive) within its scope only', async () => {
      const v = await h.client.verifyAppPassword({
        username: 'ALICE',
        secret: secret.toUpperCase(),
        clientAddress: '10.0.1.1',
        protocol: 'irc',
      });
      expect(v.user!.id).toBe(alice.id);
      expect(v.appPassword!.name).toBe('irc laptop');
      await expect(
        h.client.verifyAppPassword({ username: 'alice', secret, clientAddress: '10.0.1.1', protocol: 'ssh' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
      await expect(
        h.client.verifyAppPassword({ username: 'bob', secret, clientAddress: '10.0.1.1', protocol: 'irc' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
      await expect(
        h.client.verifyAppPassword({ username: 'alice', secret: 'wrong', clientAddress: '10.0.1.1', protocol: 'irc' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
      // ssh-style: VerifyPassword accepts an app password with the ssh scope.
      const all = await h.client.createAppPassword({ userId: alice.id, name: 'everything', scopes: [] });
      const vp = await h.client.verifyPassword({
        username: 'alice',
        secret: all.secret,
        protocol: 'ssh',
        clientAddress: '10.0.1.1',
      });
      expect(vp.kind).toBe(identityV1.CredentialKind.CREDENTIAL_KIND_APP_PASSWORD);
      const used = (await h.client.listAppPasswords({ userId: alice.id })).appPasswords.find(
        (a) => a.name === 'irc laptop',
      );
      expect(used!.lastUsedAt).toBeInstanceOf(Date);
    });

    it('gives a caller that names no protocol only `all` app passwords, never a scoped one', async () => {
      const refused = { code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' };
      // `secret` is scoped to irc only: an empty protocol must not pass that scope.
      await expect(
        h.client.verifyAppPassword({ username: 'alice', secret, clientAddress: '10.0.1.2', protocol: '' }),
      ).rejects.toMatchObject(refused);
      await expect(
        h.client.verifyPassword({ username: 'alice', secret, clientAddress: '10.0.1.2', protocol: '' }),
      ).rejects.toMatchObject(refused);
      // The same secret still works for its own protocol.
      expect(
        (await h.client.verifyAppPassword({ username: 'alice', secret, clientAddress: '10.0.1.2', protocol: 'irc' }))
          .appPassword!.name,
      ).toBe('irc laptop');
      // An `all` password and the account password need no protocol.
      const any = await h.client.createAppPassword({ userId: alice.id, name: 'any door', scopes: ['all'] });
      const v = await h.client.verifyAppPassword({
        username: 'alice',
        secret: any.secret,
        clientAddress: '10.0.1.2',
        protocol: '',
      });
      expect(v.appPassword!.name).toBe('any door');
      const vp = await h.client.verifyPassword({
        username: 'alice',
        secret: PW,
        clientAddress: '10.0.1.2',
        protocol: '',
      });
      expect(vp.kind).toBe(identityV1.CredentialKind.CREDENTIAL_KIND_PASSWORD);
      await h.client.revokeAppPassword({ userId: alice.id, appPassword: 'any door' });
    });

    it('revokes by name', async () => {
      await h.client.revokeAppPassword({ userId: alice.id, appPassword: 'irc laptop' });
      await expect(
        h.client.verifyAppPassword({ username: 'alice', secret, clientAddress: '10.0.1.1', protocol: 'irc' }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
      await expect(h.client.revokeAppPassword({ userId: alice.id, appPassword: 'irc laptop' })).rejects.toMatchObject({
        code: Code.NOT_FOUND,
      });
    });
  });

  describe('client certificates', () => {
    const fp = createHash('sha256').update('a certificate').digest('hex');

    it('adds a fingerprint, looks the account up by it, removes it', async () => {
      const c = await h.client.addClientCertificate({
        userId: bob.id,
        fingerprint: fp.toUpperCase().match(/../g)!.join(':'),
        certificate: Buffer.alloc(0),
        name: 'desktop',
      });
      expect(c.certificate).toMatchObject({ fingerprint: fp, name: 'desktop' });
      expect((await h.client.lookupByCertFingerprint({ fingerprint: fp })).user!.id).toBe(bob.id);
      expect((await h.client.listClientCertificates({ userId: bob.id })).certificates).toHaveLength(1);
      await expect(
        h.client.addClientCertificate({ userId: alice.id, fingerprint: fp, certificate: Buffer.alloc(0), name: '' }),
      ).rejects.toMatchObject({ code: Code.ALREADY_EXISTS });
      await expect(
        h.client.addClientCertificate({ userId: alice.id, fingerprint: 'abc', certificate: Buffer.alloc(0), name: '' }),
      ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'CERT_FINGERPRINT_INVALID' });
      await expect(
        h.client.addClientCertificate({
          userId: alice.id,
          fingerprint: '',
          certificate: Buffer.from('not a cert'),
          name: '',
        }),
      ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'CERTIFICATE_INVALID' });
      await h.client.removeClientCertificate({ userId: bob.id, fingerprint: fp });
      await expect(h.client.lookupByCertFingerprint({ fingerprint: fp })).rejects.toMatchObject({
        code: Code.NOT_FOUND,
      });
    });
  });

  describe('E2E key directory', () => {
    const seed1 = Buffer.alloc(32, 1);
    const seed2 = Buffer.alloc(32, 2);

    it('publishes a self-signed bundle (password or p2p app password) and serves it byte for byte', async () => {
      const b = makeBundle('Alice', seed1);
      const r = await h.client.publishE2EKey({
        username: 'alice',
        secret: PW,
        bundle: b.bundle,
        replace: false,
        clientAddress: '10.0.2.1',
      });
      expect(r.key).toMatchObject({ fingerprint: b.fingerprint, username: 'alice', current: true, revoked: false });
      const byName = (await h.client.getE2EKey({ username: 'ALICE', fingerprint: '' })).key!;
      expect(Buffer.from(byName.bundle).equals(b.bundle)).toBe(true);
      const byFp = (
        await h.client.getE2EKey({ username: '', fingerprint: b.fingerprint.toUpperCase().match(/.{4}/g)!.join(' ') })
      ).key!;
      expect(byFp).toMatchObject({ userId: alice.id, accountBanned: false });
      // Publishing the same key again is idempotent.
      await h.client.publishE2EKey({
        username: 'alice',
        secret: PW,
        bundle: b.bundle,
        replace: false,
        clientAddress: '10.0.2.1',
      });
    });

    it('checks the signature, the name and the secret', async () => {
      const b = makeBundle('alice', seed2);
      const tampered = Buffer.from(b.bundle);
      tampered[tampered.length - 5]! ^= 0xff;
      await expect(
        h.client.publishE2EKey({
          username: 'alice',
          secret: PW,
          bundle: tampered,
          replace: true,
          clientAddress: '10.0.2.2',
        }),
      ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BUNDLE_SIGNATURE_INVALID' });
      await expect(
        h.client.publishE2EKey({
          username: 'alice',
          secret: PW,
          bundle: b.bundle.subarray(0, 50),
          replace: true,
          clientAddress: '10.0.2.2',
        }),
      ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BUNDLE_INVALID' });
      await expect(
        h.client.publishE2EKey({
          username: 'bob',
          secret: PW,
          bundle: b.bundle,
          replace: true,
          clientAddress: '10.0.2.2',
        }),
      ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BUNDLE_NAME_MISMATCH' });
      await expect(
        h.client.publishE2EKey({
          username: 'alice',
          secret: 'wrong password',
          bundle: b.bundle,
          replace: true,
          clientAddress: '10.0.2.3',
        }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
      const irc = await h.client.createAppPassword({ userId: alice.id, name: 'irc only', scopes: ['irc'] });
      await expect(
        h.client.publishE2EKey({
          username: 'alice',
          secret: irc.secret,
          bundle: b.bundle,
          replace: true,
          clientAddress: '10.0.2.4',
        }),
      ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    });

    it('refuses a different key without replace, keeps history with replace', async () => {
      const b2 = makeBundle('alice', seed2, 1_700_000_001_000);
      await expect(
        h.client.publishE2EKey({
          username: 'alice',
          secret: PW,
          bundle: b2.bundle,
          replace: false,
          clientAddress: '10.0.2.5',
        }),
      ).rejects.toMatchObject({ code: Code.ALREADY_EXISTS, reason: 'E2E_KEY_EXISTS' });
      const p2p = await h.client.createAppPassword({ userId: alice.id, name: 'p2p', scopes: ['p2p'] });
      await h.client.publishE2EKey({
        username: 'alice',
        secret: p2p.secret,
        bundle: b2.bundle,
        replace: true,
        clientAddress: '10.0.2.5',
      });
      expect((await h.client.getE2EKey({ username: 'alice', fingerprint: '' })).key!.fingerprint).toBe(b2.fingerprint);
      const hist = (await h.client.getE2EKeyHistory({ userId: alice.id, username: '' })).keys;
      expect(hist.map((k) => [k.fingerprint, k.current])).toEqual([
        [b2.fingerprint, true],
        [makeBundle('alice', seed1).fingerprint, false],
      ]);
      // The old key still resolves by fingerprint (clients warn on key change).
      expect((await h.client.getE2EKey({ username: '', fingerprint: hist[1]!.fingerprint })).key!.current).toBe(false);
    });

    it('revokes a key; lookups report it', async () => {
      const cur = (await h.client.getE2EKey({ username: 'alice', fingerprint: '' })).key!;
      const r = await h.client.revokeE2EKey({ userId: alice.id, fingerprint: cur.fingerprint });
      expect(r.key!.revoked).toBe(true);
      expect((await h.client.getE2EKey({ username: '', fingerprint: cur.fingerprint })).key!.revoked).toBe(true);
      await expect(h.client.getE2EKey({ username: 'bob', fingerprint: '' })).rejects.toMatchObject({
        code: Code.NOT_FOUND,
      });
    });
  });

  it('never exceeds the per-account limits of keys, app passwords and certificates under concurrent adds', async () => {
    const u = (await h.client.register(registerReq('limits'))).user!;
    const n = 2 * MAX_SSH_KEYS;
    const settle = (ps: Promise<unknown>[]): Promise<unknown[]> =>
      Promise.all(
        ps.map((p) =>
          p.then(
            () => 'ok',
            (e: unknown) => (e as { reason?: string }).reason,
          ),
        ),
      );
    const keys = await settle(
      Array.from({ length: n }, () => h.client.addSshKey({ userId: u.id, publicKey: ed25519Line().line })),
    );
    const apps = await settle(
      Array.from({ length: n }, (_, i) => h.client.createAppPassword({ userId: u.id, name: `app${i}`, scopes: [] })),
    );
    const certs = await settle(
      Array.from({ length: n }, (_, i) =>
        h.client.addClientCertificate({
          userId: u.id,
          fingerprint: createHash('sha256').update(`limits ${i}`).digest('hex'),
          certificate: Buffer.alloc(0),
          name: '',
        }),
      ),
    );
    expect(keys.filter((r) => r === 'ok')).toHaveLength(MAX_SSH_KEYS);
    expect(keys.filter((r) => r !== 'ok')).toEqual(Array(n - MAX_SSH_KEYS).fill('SSH_KEY_LIMIT'));
    expect((await h.client.listSshKeys({ userId: u.id })).keys).toHaveLength(MAX_SSH_KEYS);
    expect(apps.filter((r) => r === 'ok')).toHaveLength(MAX_APP_PASSWORDS);
    expect((await h.client.listAppPasswords({ userId: u.id })).appPasswords).toHaveLength(MAX_APP_PASSWORDS);
    expect(certs.filter((r) => r === 'ok')).toHaveLength(MAX_CERTIFICATES);
    expect((await h.client.listClientCertificates({ userId: u.id })).certificates).toHaveLength(MAX_CERTIFICATES);
  });

  it('refuses hostile key input with INVALID_ARGUMENT, never INTERNAL or stored', async () => {
    const u = (await h.client.register(registerReq('hostile'))).user!;
    // A comment is shown in key listings (terminals): control characters are refused; a NUL cannot be stored.
    for (const comment of ['me\u0000host', 'me\u001b[2J@host', 'me\u202e@host']) {
      await expect(h.client.addSshKey({ userId: u.id, publicKey: ed25519Line(comment).line })).rejects.toMatchObject({
        code: Code.INVALID_ARGUMENT,
        reason: 'SSH_KEY_INVALID',
      });
    }
    expect((await h.client.listSshKeys({ userId: u.id })).keys).toEqual([]);
    // A correctly signed bundle whose created_at is a valid integer but past the last representable time.
    const { bundle } = makeBundle('hostile', Buffer.alloc(32, 9), 8_700_000_000_000_000);
    await expect(
      h.client.publishE2EKey({ username: 'hostile', secret: PW, bundle, replace: false, clientAddress: '10.9.0.1' }),
    ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BUNDLE_INVALID' });
    await expect(h.client.getE2EKey({ username: 'hostile', fingerprint: '' })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
  });
});
