import { hashPassword, needsRehash, verifyPassword } from './passwords';

const FAST = { logN: 4, r: 8, p: 1 };

describe('passwords', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse', FAST);
    expect(h).toMatch(/^scrypt\$ln=4,r=8,p=1\$/);
    expect(h).not.toContain('correct horse');
    await expect(verifyPassword('correct horse', h)).resolves.toBe(true);
    await expect(verifyPassword('correct hors', h)).resolves.toBe(false);
  });
  it('uses a fresh salt each time', async () => {
    expect(await hashPassword('x', FAST)).not.toBe(await hashPassword('x', FAST));
  });
  it('refuses malformed stored hashes', async () => {
    await expect(verifyPassword('x', 'plain')).resolves.toBe(false);
    await expect(verifyPassword('x', 'scrypt$ln=40,r=8,p=1$AAAA$AAAA')).resolves.toBe(false);
  });
  it('tells when the stored parameters are weaker than the current ones', async () => {
    const h = await hashPassword('x', FAST);
    expect(needsRehash(h, FAST)).toBe(false);
    expect(needsRehash(h, { ...FAST, logN: 5 })).toBe(true);
  });
});
