import { Code } from '@hubbub/errors';
import { identityV1 } from '@hubbub/proto';
import { run } from '../../src/cli';
import { startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

describe('operator CLI against a running identity', () => {
  let h: Harness;
  const lines: string[] = [];
  const cli = (...argv: string[]): Promise<number> => run(argv, h.client, (s) => lines.push(s));

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('adds a sysop, lists, bans, unbans, resets the password', async () => {
    expect(await cli('user', 'add', 'Opal', '--password', 'opal password 1', '--sysop')).toBe(0);
    expect(lines.pop()).toMatch(/created .*Opal .*sysop/);
    expect(await cli('user', 'add', 'pete', '--password', 'pete password 1')).toBe(0);
    expect(await cli('user', 'list')).toBe(0);
    expect(lines.pop()).toMatch(/Opal[\s\S]*pete/);
    expect(await cli('user', 'role', 'pete', 'sysop', '--json')).toBe(0);
    expect(JSON.parse(lines.pop()!)).toMatchObject({ username: 'pete', role: 'ROLE_SYSOP' });
    expect(await cli('user', 'ban', 'pete', '--reason', 'flooding', '--for', '1d')).toBe(0);
    expect(lines.pop()).toMatch(/banned: .*pete.*until .*\(flooding\)/);
    expect(await cli('bans')).toBe(0);
    expect(lines.pop()).toContain('pete');
    expect(await cli('user', 'unban', 'pete')).toBe(0);
    expect(await cli('user', 'reset-password', 'pete', '--password', 'pete password 2')).toBe(0);
    await expect(
      h.client.authenticate({ username: 'pete', password: 'pete password 2', clientAddress: '', sessionTtlSeconds: 0 }),
    ).resolves.toBeDefined();
    const u = (await h.client.getUserByName({ username: 'opal' })).user!;
    expect(u.role).toBe(identityV1.Role.ROLE_SYSOP);
  });

  it('reports identity refusals as AppErrors', async () => {
    await expect(cli('user', 'role', 'nobody', 'sysop')).rejects.toMatchObject({ code: Code.NOT_FOUND });
    await expect(cli('user', 'add', 'root', '--password', 'whatever123')).rejects.toMatchObject({
      reason: 'USERNAME_RESERVED',
    });
  });
});
