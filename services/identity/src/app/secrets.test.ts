import {
  APP_PASSWORD_ALPHABET,
  hashToken,
  isTokenShaped,
  newAppPassword,
  newSessionToken,
  normalizeAppPassword,
  scopeAllows,
} from './secrets';

describe('session tokens', () => {
  it('are 256-bit base64url and hashed with SHA-256', () => {
    const t = newSessionToken();
    expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    expect(isTokenShaped(t)).toBe(true);
    expect(hashToken(t)).toHaveLength(32);
    expect(newSessionToken()).not.toBe(t);
  });
  it('rejects badly shaped tokens', () => {
    expect(isTokenShaped('x')).toBe(false);
    expect(isTokenShaped('a'.repeat(42) + '=')).toBe(false);
  });
});

describe('app passwords', () => {
  it('are 12 characters of a 32-symbol alphabet', () => {
    expect(APP_PASSWORD_ALPHABET).toHaveLength(32);
    const p = newAppPassword();
    expect(p).toMatch(/^[0-9a-hjkmnp-tv-z]{12}$/);
  });
  it('normalise case, separators and confusable letters', () => {
    expect(normalizeAppPassword('k3Yt0kEn5abc')).toBe('k3yt0ken5abc');
    expect(normalizeAppPassword('K3YT-0KEN-5ABC')).toBe('k3yt0ken5abc');
    expect(normalizeAppPassword('k3yt0ken5abO')).toBe('k3yt0ken5ab0');
    expect(normalizeAppPassword('short')).toBeUndefined();
    expect(normalizeAppPassword('k3yt0ken5ab!')).toBeUndefined();
  });
  it('check scopes', () => {
    expect(scopeAllows(['all'], 'irc')).toBe(true);
    expect(scopeAllows(['ssh'], 'irc')).toBe(false);
    expect(scopeAllows(['ssh', 'irc'], 'irc')).toBe(true);
  });
  it('never widen scoped passwords for a caller that names no protocol', () => {
    expect(scopeAllows(['ssh'], '')).toBe(false);
    expect(scopeAllows(['ssh', 'irc', 'ws', 'p2p'], '')).toBe(false);
    expect(scopeAllows([], '')).toBe(false);
    expect(scopeAllows(['all'], '')).toBe(true);
  });
});
