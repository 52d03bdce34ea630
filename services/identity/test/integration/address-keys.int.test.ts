/**
 * Per-address limits count an IPv6 address as its /64 (addressThrottleKey): failed logins and registrations from
 * one /64 add up whatever the address and its spelling, another /64 is not affected, IPv4 stays exact.
 */
import { Code } from '@hubbub/errors';
import { waitFor } from '@hubbub/testing';
import { run } from '../../src/cli';
import { FAST_THROTTLE_ENV, authReq, registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const PW = 'correct horse battery';

describe('per-address limits by IPv6 /64 (PostgreSQL + NATS)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      ...FAST_THROTTLE_ENV,
      IDENTITY_REGISTRATIONS_PER_HOUR: '3',
    });
    await h.client.register(registerReq('sixer', { clientAddress: '198.51.100.10' }));
  });
  afterAll(async () => {
    await h.close();
  });

  it('throttles failed logins from any address of one /64 together; another /64 is not affected', async () => {
    // A new (unknown) name each time, so only the address counter can throttle.
    let n = 0;
    const fail = (addr: string): Promise<unknown> =>
      h.client.authenticate(authReq(`ghost-${n++}`, 'wrong password', addr)).catch((e: unknown) => e);
    const sameNet = [
      '2001:db8:77:1::1',
      '2001:0db8:0077:0001:0000:0000:0000:0002',
      '2001:DB8:77:1:FFFF:FFFF:FFFF:FFFF',
      '[2001:db8:77:1::4]',
    ];
    for (const a of sameNet.slice(0, 3)) expect(await fail(a)).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
    expect(await fail(sameNet[3]!)).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: 'LOGIN_THROTTLED' });
    // The right password of an untouched account is refused from a fresh address of that /64…
    await expect(h.client.authenticate(authReq('sixer', PW, '2001:db8:77:1:abcd::1'))).rejects.toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      reason: 'LOGIN_THROTTLED',
    });
    // …but not from the neighbouring /64, and the full address (not the /64) is what is stored.
    const ok = await h.client.authenticate(authReq('sixer', PW, '2001:db8:77:2:0:0:0:5'));
    const p = await h.client.getUser({ userId: ok.user!.id, includePrivate: true });
    expect(p.private!.lastLoginAddress).toBe('2001:db8:77:2:0:0:0:5');

    // Keep failing from ever new addresses of the /64 until it is locked.
    let last: unknown;
    for (let i = 0; i < 30; i++) {
      await waitFor(async () => {
        last = await fail(`2001:db8:77:1:${i.toString(16)}::${n.toString(16)}`);
        return (last as { reason?: string }).reason !== 'LOGIN_THROTTLED' || locked(last);
      }, 5_000);
      if (locked(last)) break;
    }
    expect(last).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, details: { locked: 'true' } });
    // The operator sees the lock under any address of the /64, and is told it is the /64 that counts.
    expect((await h.client.checkAddressBan({ address: '2001:db8:77:1::beef' })).throttledSeconds).toBeGreaterThan(50);
    expect((await h.client.checkAddressBan({ address: '2001:db8:77:2::beef' })).throttledSeconds).toBe(0);
    const lines: string[] = [];
    expect(await run(['address', 'check', '2001:DB8:77:1::BEEF'], h.client, (s) => lines.push(s))).toBe(0);
    expect(lines.pop()).toMatch(/^locked for \d+s \(failed logins count per 2001:db8:77:1::\/64\)$/);
    await expect(h.client.authenticate(authReq('sixer', PW, '2001:db8:77:2::6'))).resolves.toBeDefined();
  });

  it('counts registrations per /64, and IPv4 in any spelling per exact address', async () => {
    const reg = (name: string, addr: string): Promise<unknown> =>
      h.client.register(registerReq(name, { clientAddress: addr })).then(
        () => 'ok',
        (e: unknown) => e,
      );
    const throttled = { code: Code.RESOURCE_EXHAUSTED, reason: 'REGISTRATION_THROTTLED' };
    expect(await reg('reg-a1', '2001:db8:78:1::1')).toBe('ok');
    expect(await reg('reg-a2', '2001:0db8:78:1:0:0:0:2')).toBe('ok');
    expect(await reg('reg-a3', '2001:DB8:78:1:FFFF::3')).toBe('ok');
    expect(await reg('reg-a4', '2001:db8:78:1:1234:5678:9abc:def0')).toMatchObject(throttled);
    expect(await reg('reg-b1', '2001:db8:78:2::1')).toBe('ok');
    // 198.51.100.20, also written IPv4-mapped in hex, is one address; its neighbour is another.
    for (const name of ['reg-c1', 'reg-c2', 'reg-c3']) expect(await reg(name, '198.51.100.20')).toBe('ok');
    expect(await reg('reg-c4', '::ffff:c633:6414')).toMatchObject(throttled);
    expect(await reg('reg-c5', '::ffff:198.51.100.20')).toMatchObject(throttled);
    expect(await reg('reg-d1', '198.51.100.21')).toBe('ok');
  });
});

function locked(e: unknown): boolean {
  return (e as { details?: Record<string, string> } | undefined)?.details?.['locked'] === 'true';
}
