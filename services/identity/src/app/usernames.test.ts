import { checkPassword, checkUsername, isSafeLine, isValidEmail } from './usernames';

describe('checkUsername', () => {
  it.each(['ab', 'alice', 'Bob_the-2nd', 'a'.repeat(24)])('accepts %s', (n) => {
    expect(checkUsername(n).ok).toBe(true);
  });
  it.each(['a', '', '1abc', '_x', 'a'.repeat(25), 'al ice', 'al#ice', 'ålice', 'alice!'])(
    'rejects %s as invalid',
    (n) => {
      const r = checkUsername(n);
      expect(r).toMatchObject({ ok: false, reason: 'USERNAME_INVALID' });
    },
  );
  it.each(['root', 'Admin', 'SYSOP', 'guest', 'System'])('rejects reserved %s', (n) => {
    expect(checkUsername(n)).toMatchObject({ ok: false, reason: 'USERNAME_RESERVED' });
  });
  it('folds to lowercase', () => {
    expect(checkUsername('AlIcE')).toEqual({ ok: true, folded: 'alice' });
  });
});

describe('checkPassword', () => {
  it('enforces length and not-the-username', () => {
    expect(checkPassword('short', 'alice').ok).toBe(false);
    expect(checkPassword('x'.repeat(129), 'alice').ok).toBe(false);
    expect(checkPassword('AliceAlice', 'alicealice')).toEqual({
      ok: false,
      message: 'Password must not be your username',
    });
    expect(checkPassword('correct horse', 'alice').ok).toBe(true);
  });
});

describe('field checks', () => {
  it('validates e-mail loosely', () => {
    expect(isValidEmail('a@b')).toBe(true);
    expect(isValidEmail('a@b@c')).toBe(false);
    expect(isValidEmail('@b')).toBe(false);
    expect(isValidEmail('a b@c')).toBe(false);
  });
  it('refuses control and bidi characters in one-line fields', () => {
    expect(isSafeLine('Zoë')).toBe(true);
    expect(isSafeLine('a\u0007b')).toBe(false);
    expect(isSafeLine('x\u202ey')).toBe(false);
  });
});
