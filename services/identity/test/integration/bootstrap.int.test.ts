import { ConfigError, loadConfig } from '@hubbub/runtime';
import { identityV1 } from '@hubbub/proto';
import { identitySchema } from '../../src/config';
import { TEST_ENV, authReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const SECRET = 'bootstrap secret 1';

describe('IDENTITY_BOOTSTRAP_SYSOP', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('creates the sysop on the first start, and a later start leaves the account as it is', async () => {
    h = await startHarness({ IDENTITY_BOOTSTRAP_SYSOP: `Chief:${SECRET}` });
    const { user } = await h.client.getUserByName({ username: 'chief' });
    expect(user).toMatchObject({ username: 'Chief', role: identityV1.Role.ROLE_SYSOP });
    const login = await h.client.authenticate(authReq('Chief', SECRET));
    expect(login.session?.token).toBeTruthy();

    // An operator demotes it; a second instance with the same variable (a restart) changes nothing.
    await h.client.setRole({ userId: user!.id, role: identityV1.Role.ROLE_USER, by: 'test' });
    await h.startAnother();
    const again = await h.clients[1]!.getUserByName({ username: 'CHIEF' });
    expect(again.user).toMatchObject({ id: user!.id, role: identityV1.Role.ROLE_USER });
    expect(
      (
        await h.client.listUsers({
          query: 'chief',
          pageSize: 10,
          pageToken: '',
          includeDeleted: false,
          changedSince: undefined,
        })
      ).users,
    ).toHaveLength(1);
  });

  it.each([
    [`admin:${SECRET}`, 'names a reserved username'],
    [`Sysop:${SECRET}`, 'names a reserved username'],
    ['chief:short', 'must match'],
    ['Chieftain:CHIEFTAIN', 'has a password Register refuses'],
  ])('%s is refused by the configuration, without quoting the secret', (value, why) => {
    let err: unknown;
    try {
      loadConfig(identitySchema, { ...TEST_ENV, IDENTITY_BOOTSTRAP_SYSOP: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).problems.join('\n');
    expect(text).toContain('IDENTITY_BOOTSTRAP_SYSOP');
    expect(text).toContain(why);
    expect(text).not.toContain(value.slice(value.indexOf(':') + 1));
  });
});
