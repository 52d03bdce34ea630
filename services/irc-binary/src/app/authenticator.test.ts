import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { MemoryIdentity, MemoryPresence } from '../adapters/memory';
import { Authenticator } from './authenticator';
import type { AuthContext } from './authenticator';
import type { PresenceLease } from './ports';
import { isValidNick } from './nick';

const log = createLogger({ service: 'test', level: 'silent' });
const plain: AuthContext = {
  isTls: false,
  clientCertFingerprint: undefined,
  peerAddress: '127.0.0.1',
  sessionId: 's1',
};
const tls: AuthContext = { ...plain, isTls: true };

function setup(allowPlaintextTokens = false) {
  const identity = new MemoryIdentity();
  const presence = new MemoryPresence();
  identity.addAccount('carol', { tokens: ['k3yt0ken5abc'], fingerprints: ['ab'.repeat(32)] });
  const a = new Authenticator({ identity, presence, allowPlaintextTokens, backendTimeoutMs: 200, log });
  return { identity, presence, a };
}

describe('nick validity (§3.4 row 1)', () => {
  it.each(['', ' bob', 'bob ', 'a\u0007b', 'x\u202Ey', 'a\u0085b', '\u200Eab', 'a\u2066', 'tab\t'])(
    'refuses %j',
    (n) => {
      expect(isValidNick(n)).toBe(false);
    },
  );
  it.each(['bob', 'Zoë', 'a b', '\uffff', 'n'.repeat(32)])('accepts %j', (n) => expect(isValidNick(n)).toBe(true));
});

describe('Authenticator (§3.4)', () => {
  it('row 2: name#token only over TLS by default; the account name is canonical', async () => {
    const { a } = setup();
    expect(await a.authenticate('carol#k3Yt0kEn5abc', plain)).toMatchObject({ accepted: false, countFailure: true });
    expect(await a.authenticate('CAROL#k3Yt0kEn5abc', tls)).toMatchObject({
      accepted: true,
      nick: 'carol',
      method: 'token',
    });
    expect(await a.authenticate('carol#wrong', tls)).toMatchObject({ accepted: false, countFailure: true });
    expect(await a.authenticate('nobody#x', tls)).toMatchObject({ accepted: false });
  });
  it('row 2 with IRCB_ALLOW_PLAINTEXT_TOKENS', async () => {
    const { a } = setup(true);
    expect(await a.authenticate('carol#k3Yt0kEn5abc', plain)).toMatchObject({ accepted: true, nick: 'carol' });
  });
  it('row 3: an account name needs the registered certificate', async () => {
    const { a } = setup();
    expect(await a.authenticate('Carol', tls)).toMatchObject({ accepted: false });
    expect(await a.authenticate('Carol', { ...tls, clientCertFingerprint: 'cd'.repeat(32) })).toMatchObject({
      accepted: false,
    });
    expect(await a.authenticate('Carol', { ...tls, clientCertFingerprint: 'ab'.repeat(32) })).toMatchObject({
      accepted: true,
      nick: 'carol',
      author: { kind: 'account', accountId: '1', displayName: 'carol' },
    });
  });
  it('row 4: guests claim fold(nick); the effective nick is exactly as sent', async () => {
    const { a } = setup();
    const r = await a.authenticate('Dave', plain);
    expect(r).toMatchObject({ accepted: true, nick: 'Dave', author: { kind: 'guest', displayName: 'Dave' } });
    expect(await a.authenticate('DAVE', { ...plain, sessionId: 's2' })).toMatchObject({ accepted: false });
    if (r.accepted) await r.lease!.release();
    expect(await a.authenticate('dave', { ...plain, sessionId: 's3' })).toMatchObject({ accepted: true });
  });
  it("row 4: a guest nick with a character that renders as nothing is refused (it would look like another's)", async () => {
    const { a, presence } = setup();
    for (const n of ['carol\u200b', 'Da\u00adve', '\u2060dave', 'da\u200dve', '\u3164'])
      expect(await a.authenticate(n, plain)).toMatchObject({ accepted: false, countFailure: true });
    expect(presence.guests.size).toBe(0); // nothing was claimed
    expect(await a.authenticate('Zoë 😀', plain)).toMatchObject({ accepted: true, nick: 'Zoë 😀' });
  });
  it('N14 identity unavailable: refused without counting a failure', async () => {
    const { a, identity } = setup();
    identity.available = false;
    expect(await a.authenticate('erin', plain)).toMatchObject({ accepted: false, countFailure: false });
    identity.available = true;
    expect(await a.authenticate('erin', plain)).toMatchObject({ accepted: true });
  });
  it('a backend slower than IRCB_BACKEND_TIMEOUT_MS: refused, not counted, and a late claim is given back', async () => {
    const { a, presence } = setup();
    const orig = presence.claimGuest.bind(presence);
    presence.claimGuest = (n, s) => new Promise((r) => setTimeout(() => r(orig(n, s)), 300));
    expect(await a.authenticate('slow', plain)).toMatchObject({ accepted: false, countFailure: false });
    await new Promise((r) => setTimeout(r, 350));
    expect(presence.guests.has('slow')).toBe(false);
  });
  it('a late claim whose release fails (presence down) is only logged: no unhandled rejection, which would end the process', async () => {
    const { a, presence } = setup();
    let settle: ((l: PresenceLease) => void) | undefined;
    presence.claimGuest = () => new Promise<PresenceLease>((r) => (settle = r));
    expect(await a.authenticate('late', plain)).toMatchObject({ accepted: false, countFailure: false });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let released = false;
      settle!({
        release: () => {
          released = true;
          return Promise.reject(new Error('presence unreachable'));
        },
      });
      await waitFor(() => released);
      // Rejections are reported once the microtask queue has drained.
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
