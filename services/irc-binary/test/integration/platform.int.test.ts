/**
 * irc-binary against the real platform: identity and message-store processes, PostgreSQL, NATS.
 * Cross-protocol delivery (M6), messaging (M1–M4, M8, M9, M10), channels and history (L2–L12, L14),
 * nick protection (N1–N6, N10, N12, N13, N15) and a fuzzing connection next to a well-behaved one.
 */
import { Presence, identityNameAuthority } from '@hubbub/presence';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { messagesV1 } from '@hubbub/proto';
import { newMessage } from '@hubbub/msg-client';
import { queryDatabase, waitFor } from '@hubbub/testing';
import { encodeClientFrame } from '../../src/protocol/frames';
import type { ServerFrame, WireMessage } from '../../src/protocol/events';
import { guestPrincipal, postElsewhere, registerAccount, startPlatform } from '../helpers/platform';
import type { IrcInstance, Platform } from '../helpers/platform';
import { RawClient } from '../helpers/raw-client';

jest.setTimeout(30_000);

const V13 = '03 07 67 65 6e 65 72 61 6c 00 15 68 65 6c 6c 6f 20 66 72 6f 6d 20 64 64 5f 69 6e 74 65 72 6f 70';

let p: Platform;
let irc: IrcInstance;
let generalId: string;
const clients: RawClient[] = [];

async function client(inst: IrcInstance = irc): Promise<RawClient> {
  const c = await RawClient.connect(inst.app.port);
  clients.push(c);
  return c;
}
async function ready(nick: string, inst: IrcInstance = irc): Promise<RawClient> {
  const c = await client(inst);
  await c.handshake(nick);
  return c;
}
async function auth(c: RawClient, nick: string): Promise<string> {
  c.send({ type: 'Authenticate', nick });
  return c.read(2);
}
async function nextOf<T extends ServerFrame['type']>(
  c: RawClient,
  type: T,
): Promise<Extract<ServerFrame, { type: T }>> {
  const f = await c.nextFrame();
  if (f.type !== type)
    throw new Error(
      `expected ${type}, got ${JSON.stringify(f, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`,
    );
  return f as Extract<ServerFrame, { type: T }>;
}
async function list(c: RawClient, channel: string, before = 0n, after = 0n): Promise<readonly WireMessage[]> {
  c.send({ type: 'ListMessages', channel, before, after });
  return (await nextOf(c, 'ListMessages')).messages;
}
function metric(name: string, label?: string): Promise<number> {
  return irc.app.registry
    .getSingleMetric(name)!
    .get()
    .then((m) => {
      const v = m.values.find((x) => label === undefined || Object.values(x.labels).includes(label));
      return v?.value ?? 0;
    });
}

beforeAll(async () => {
  p = await startPlatform();
  irc = await p.startIrc({ backendTimeoutMs: 1_500 });
  generalId = irc.app.channels.lookup('general')!.id;
}, 60_000);
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  await p?.stop();
}, 30_000);

describe("bans and deletions (identity user events end the account's connections)", () => {
  it('a ban in force closes every connection of the account at once; guests stay; the account is refused after', async () => {
    const inst = await p.startIrc({ allowPlaintextTokens: true });
    const id = await registerAccount(p, 'mallory');
    const { secret } = await p.idClient.createAppPassword({ userId: id, name: 'irc', scopes: [] });
    const a = await ready(`mallory#${secret}`, inst);
    const b = await ready(`MALLORY#${secret}`, inst);
    const guest = await ready('bystander', inst);
    // A temporary ban is in force until its end.
    await p.idClient.ban({ userId: id, reason: 'spam', until: new Date(Date.now() + 3_600_000), by: 'test' });
    await Promise.all([a.waitClosed(3_000), b.waitClosed(3_000)]);
    expect(inst.logs.join('\n')).toMatch(/IRCB_ACCOUNT_REVOKED/);
    // The guest is untouched and still receives broadcasts.
    await postElsewhere(p, generalId, 'after the ban');
    expect(await nextOf(guest, 'SendMessage')).toMatchObject({ message: { content: 'after the ban' } });
    // AUTHENTICATE as the banned account is refused.
    const c = await client(inst);
    c.write('00 02');
    await c.expect('00 00');
    c.send({ type: 'Authenticate', nick: `mallory#${secret}` });
    await c.expect('02 00');
  });

  it('a ban whose event was never seen is caught by the periodic recheck (IRCB_ACCOUNT_RECHECK_MS)', async () => {
    const inst = await p.startIrc({ allowPlaintextTokens: true, accountRecheckMs: 200 });
    const id = await registerAccount(p, 'eve');
    const { secret } = await p.idClient.createAppPassword({ userId: id, name: 'irc', scopes: [] });
    const a = await ready(`eve#${secret}`, inst);
    const guest = await ready('onlooker', inst);
    // Banned behind the event bus's back: straight in identity's database, no NATS event.
    await queryDatabase(
      p.identityDb.url,
      `UPDATE users SET banned_at = now(), ban_reason = 'quiet', ban_by = 'test' WHERE id = $1`,
      [id],
    );
    await a.waitClosed(3_000);
    expect(guest.closed).toBe(false);
  });

  it('deleting the account closes its connections', async () => {
    const inst = await p.startIrc({ allowPlaintextTokens: true });
    const id = await registerAccount(p, 'trudy');
    const { secret } = await p.idClient.createAppPassword({ userId: id, name: 'irc', scopes: [] });
    const a = await ready(`trudy#${secret}`, inst);
    await p.idClient.deleteAccount({
      userId: id,
      password: 'correct horse battery staple 42',
      username: '',
      clientAddress: '127.0.0.1',
    });
    await a.waitClosed(3_000);
  });
});

describe('cross-protocol (§1 "One conversation")', () => {
  it('M6 a post through message-store by another door reaches READY connections with the same snowflake id, exact bytes', async () => {
    const a = await ready('m6a');
    const m = await postElsewhere(p, generalId, 'hi', guestPrincipal('Zoë'));
    const f = await nextOf(a, 'SendMessage');
    expect(f.message.id).toBe(BigInt(m.id));
    const idHex = BigInt(m.id).toString(16).padStart(16, '0');
    expect(a.received.toString('hex').endsWith('03' + idHex + '0767656e6572616c' + '045a6fc3ab' + '00026869')).toBe(
      true,
    );
  });

  it('N15 a dum-dum post is in message-store history with the same id and a guest author guest:<nick>', async () => {
    const a = await ready('frank');
    a.write(V13);
    const echo = await nextOf(a, 'SendMessage');
    const h = await p.msClient.listMessages({
      principal: guestPrincipal('reader'),
      channelId: generalId,
      before: '',
      after: '',
      limit: 5,
      includeDeleted: false,
      tags: [],
      mailbox: false,
    });
    const stored = h.messages.find((x) => x.id === echo.message.id.toString());
    expect(stored).toMatchObject({
      authorName: 'frank',
      authorId: 'guest:frank',
      authorKind: messagesV1.PrincipalKind.PRINCIPAL_KIND_GUEST,
      door: 'irc-binary',
      text: 'hello from dd_interop',
    });
  });
});

describe('messaging (§7.5)', () => {
  it('M1 A and B get byte-identical broadcasts; C (only HELLO) gets nothing', async () => {
    const a = await ready('m1a');
    const b = await ready('m1b');
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    const aBefore = a.received.length;
    const bBefore = b.received.length;
    a.write(V13);
    const fa = await nextOf(a, 'SendMessage');
    const fb = await nextOf(b, 'SendMessage');
    expect(fb).toEqual(fa);
    expect(fa.message).toMatchObject({ channel: 'general', nick: 'm1a', content: 'hello from dd_interop' });
    expect(a.received.subarray(aBefore)).toEqual(b.received.subarray(bBefore));
    // C: still nothing after A's broadcast reached everyone (and a LIST round trip on B).
    b.write('04');
    await nextOf(b, 'ListChannels');
    expect(c.received.length).toBe(2);
  });

  it('M2 SEND_MESSAGE to "nope" is dropped silently and counted; the next LIST_CHANNELS is answered', async () => {
    const a = await ready('m2a');
    const before = await metric('ircb_messages_dropped_total', 'unknown_channel');
    a.send({ type: 'SendMessage', channel: 'nope', content: 'x' }, { type: 'ListChannels' });
    const l = await nextOf(a, 'ListChannels');
    expect(l.channels).toContain('general');
    expect(await metric('ircb_messages_dropped_total', 'unknown_channel')).toBe(before + 1);
  });

  it('M3 empty content is stored and broadcast', async () => {
    const a = await ready('m3a');
    a.write('03 07 67 65 6e 65 72 61 6c 00 00');
    expect((await nextOf(a, 'SendMessage')).message.content).toBe('');
  });

  it('M4 100 messages back to back: echoes in order, ids strictly increasing, bit 63 = 0, time within 1 s', async () => {
    const a = await ready('m4a');
    const frames = Array.from({ length: 100 }, (_, i) =>
      encodeClientFrame({ type: 'SendMessage', channel: 'general', content: `m${i}` }),
    );
    const t = Date.now();
    a.write(Buffer.concat(frames));
    const got: WireMessage[] = [];
    while (got.length < 100) {
      const f = await nextOf(a, 'SendMessage');
      if (f.message.nick === 'm4a') got.push(f.message);
    }
    expect(got.map((m) => m.content)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    for (let i = 1; i < got.length; i++) expect(got[i]!.id > got[i - 1]!.id).toBe(true);
    for (const m of got) {
      expect(m.id >> 63n).toBe(0n);
      expect(Math.abs(Number(m.id >> 19n) - t)).toBeLessThan(1_000 + (Date.now() - t));
    }
  });

  it('M8 a private channel is neither listed nor delivered', async () => {
    const a = await ready('m8a');
    const ownerId = await registerAccount(p, 'privowner');
    const owner = {
      userId: ownerId,
      displayName: 'privowner',
      kind: messagesV1.PrincipalKind.PRINCIPAL_KIND_ACCOUNT,
      sysop: false,
      door: 'ws-messenger',
    };
    const ch = await p.msClient.createChannel({
      principal: owner,
      kind: messagesV1.ChannelKind.CHANNEL_KIND_GROUP,
      slug: 'secret',
      title: 'secret',
      info: '',
      visibility: messagesV1.Visibility.VISIBILITY_PRIVATE,
      memberIds: [],
    });
    await postElsewhere(p, ch.channel!.id, 'private words', owner);
    const pub = await postElsewhere(p, generalId, 'after the private one');
    const f = await nextOf(a, 'SendMessage');
    expect(f.message.id).toBe(BigInt(pub.id));
    a.send({ type: 'ListChannels' });
    expect((await nextOf(a, 'ListChannels')).channels).not.toContain('secret');
    expect(await list(a, 'secret')).toEqual([]);
  });

  it("M10 two instances sharing NATS: B on instance 2 gets A's post once, A its echo once", async () => {
    const irc2 = await p.startIrc();
    const a = await ready('m10a');
    const b = await ready('m10b', irc2);
    a.write(V13);
    const fa = await nextOf(a, 'SendMessage');
    const fb = await nextOf(b, 'SendMessage');
    expect(fb.message).toEqual(fa.message);
    // A marker posted afterwards arrives next on both: nothing was delivered twice in between.
    const marker = await postElsewhere(p, generalId, 'marker');
    expect((await nextOf(a, 'SendMessage')).message.id).toBe(BigInt(marker.id));
    expect((await nextOf(b, 'SendMessage')).message.id).toBe(BigInt(marker.id));
  });

  it('a restart with the same IRCB_INSTANCE_ID reuses no idempotency key: the new post is stored, not answered with an old one', async () => {
    const first = await p.startIrc({ instanceId: 'fixed' });
    const a = await ready('keeper', first);
    a.send({ type: 'SendMessage', channel: 'general', content: 'before the restart' });
    expect((await nextOf(a, 'SendMessage')).message.content).toBe('before the restart');
    a.close();
    await first.app.close();
    // The same connection number, nick and frame number on the restarted instance.
    const second = await p.startIrc({ instanceId: 'fixed' });
    const b = await ready('keeper', second);
    b.send({ type: 'SendMessage', channel: 'general', content: 'after the restart' });
    const echo = await nextOf(b, 'SendMessage');
    expect(echo.message.content).toBe('after the restart');
    const stored = await list(b, 'general');
    expect(stored.filter((m) => m.nick === 'keeper').map((m) => m.content)).toEqual([
      'before the restart',
      'after the restart',
    ]);
  });

  it('M9 a reader that never reads is closed at IRCB_MAX_OUTBUF_BYTES; another connection keeps receiving with no gap', async () => {
    const inst = await p.startIrc({ maxOutbufBytes: 256 * 1024 });
    const slow = await ready('m9slow', inst);
    const good = await ready('m9good', inst);
    const poster = await ready('m9post', inst);
    slow.socket.pause(); // stops reading: the kernel buffers fill, then the server's output grows
    const content = 'x'.repeat(1000);
    const batch = Buffer.concat(
      Array.from({ length: 100 }, () => encodeClientFrame({ type: 'SendMessage', channel: 'general', content })),
    );
    let sent = 0;
    const seen: bigint[] = [];
    const drainGood = (): void => {
      for (const f of good.frames.splice(0))
        if (f.type === 'SendMessage' && f.message.nick === 'm9post') seen.push(f.message.id);
    };
    await waitFor(
      async () => {
        drainGood();
        if (inst.app.server.connections.size === 2) return true;
        if (sent - seen.length < 300) {
          poster.write(batch);
          sent += 100;
        }
        return false;
      },
      25_000,
      'the slow reader to be closed',
    ).catch((e: unknown) => {
      const conns = [...inst.app.server.connections].map((c) => `${c.session.effectiveNick}:${c.unsentBytes}`);
      throw new Error(`${String(e)}; sent ${sent}, seen ${seen.length}, conns ${conns.join(',')}`);
    });
    expect(inst.logs.some((l) => l.includes('IRCB_ERR_SLOW_READER'))).toBe(true);
    await waitFor(() => (drainGood(), seen.length === sent), 15_000, 'every post at the good connection');
    for (let i = 1; i < seen.length; i++) expect(seen[i]! > seen[i - 1]!).toBe(true);
  });
});

describe('channels and history (§7.6)', () => {
  let histId: string;
  let hist: WireMessage[];

  beforeAll(async () => {
    const r = await p.msClient.ensurePublicChannels({
      slugs: ['hist'],
      kind: messagesV1.ChannelKind.CHANNEL_KIND_UNSPECIFIED,
    });
    histId = r.channels[0]!.id;
    await irc.app.channels.refresh();
    // 150 messages m0..m149, posted as one ordered batch by another door.
    const res = await p.msClient.postMessages({
      leanReply: false,
      principals: [],
      principal: guestPrincipal('histbot'),
      messages: Array.from({ length: 150 }, (_, i) =>
        newMessage({ channelId: histId, text: `m${i}`, clientKey: `hist-${i}` }),
      ),
    });
    hist = res.results.map((x) => ({
      id: BigInt(x.message!.id),
      channel: 'hist',
      nick: 'histbot',
      content: x.message!.text,
    }));
  });

  it('L2 LIST_CHANNELS lists general', async () => {
    const a = await ready('l2');
    a.write('04');
    expect((await nextOf(a, 'ListChannels')).channels.slice(0, 1)).toEqual(['general']);
  });

  it('L3 a public channel created by another frontend is listed within 5 s', async () => {
    const a = await ready('l3');
    await p.msClient.ensurePublicChannels({ slugs: ['news'], kind: messagesV1.ChannelKind.CHANNEL_KIND_UNSPECIFIED });
    const t0 = Date.now();
    await waitFor(
      async () => {
        a.send({ type: 'ListChannels' });
        return (await nextOf(a, 'ListChannels')).channels.includes('news');
      },
      5_000,
      'news listed',
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('L4–L7 strict bounds on three messages', async () => {
    const a = await ready('l4');
    const [m0, m1, m2] = hist.slice(147);
    const ids = async (b: bigint, af: bigint): Promise<bigint[]> => (await list(a, 'hist', b, af)).map((m) => m.id);
    expect(await ids(m1!.id, m0!.id - 1n)).toEqual([m0!.id]);
    expect(await ids(0n, m1!.id)).toEqual([m2!.id]);
    expect(await ids(m2!.id, m0!.id)).toEqual([m1!.id]);
    expect(await ids(m1!.id, m1!.id)).toEqual([]);
  });

  it('L8–L11 pages of 100 over 150 messages', async () => {
    const a = await ready('l8');
    const ids = async (b: bigint, af: bigint): Promise<string[]> =>
      (await list(a, 'hist', b, af)).map((m) => m.content);
    const range = (x: number, y: number): string[] => Array.from({ length: y - x + 1 }, (_, i) => `m${x + i}`);
    expect(await ids(0n, 0n)).toEqual(range(50, 149));
    expect(await ids(0n, hist[9]!.id)).toEqual(range(10, 109));
    expect(await ids(hist[120]!.id, 0n)).toEqual(range(20, 119));
    expect(await ids(hist[120]!.id, hist[9]!.id)).toEqual(range(20, 119));
    const full = await list(a, 'hist');
    expect(full[0]).toEqual(hist[50]);
  });

  it('bounds with bit 63 set (any u64 is legal on the wire): answered by the §3.8 rule, not as a store failure', async () => {
    const a = await ready('bigbounds');
    const MAX = 0xffffffffffffffffn;
    const contents = async (b: bigint, af: bigint): Promise<string[]> =>
      (await list(a, 'hist', b, af)).map((m) => m.content);
    const range = (x: number, y: number): string[] => Array.from({ length: y - x + 1 }, (_, i) => `m${x + i}`);
    // id < 2^64-1 holds for every id: the newest 100, as with no upper bound.
    expect(await contents(MAX, 0n)).toEqual(range(50, 149));
    expect(await contents(1n << 63n, 0n)).toEqual(range(50, 149));
    // Y < id < 2^64-1 with Y = m9: the newest 100 of m10..m149 (not the oldest, as "after only" would give).
    expect(await contents(MAX, hist[9]!.id)).toEqual(range(50, 149));
    // id > 2^63 holds for no id.
    expect(await contents(0n, 1n << 63n)).toEqual([]);
    expect(await contents(0n, MAX - 1n)).toEqual([]);
    expect(irc.logs.join('\n')).not.toMatch(/IRCB_ERR_STORE_UNAVAILABLE/);
  });

  it('L12 LIST_MESSAGES "ghost": 05 00 00 00 and no channel is created', async () => {
    const a = await ready('l12');
    a.frames.length = 0;
    const before = a.received.length;
    a.send({ type: 'ListMessages', channel: 'ghost', before: 0n, after: 0n });
    await nextOf(a, 'ListMessages');
    expect(a.received.subarray(before).toString('hex')).toBe('05000000');
    const all = await p.msClient.listChannels({
      principal: undefined,
      kind: 0,
      visibility: 0,
      changedSince: undefined,
      includeArchived: true,
      includeMembers: false,
      includeStats: false,
      memberOnly: false,
    });
    expect(all.channels.map((c) => c.slug)).not.toContain('ghost');
  });

  it('L14 an edit and a delete made elsewhere show in history, and nothing is pushed live', async () => {
    const a = await ready('l14');
    const r = await p.msClient.ensurePublicChannels({ slugs: ['edits'], kind: 0 });
    await irc.app.channels.refresh();
    const who = guestPrincipal('editor');
    const m0 = await postElsewhere(p, r.channels[0]!.id, 'first', who);
    const m1 = await postElsewhere(p, r.channels[0]!.id, 'second', who);
    await nextOf(a, 'SendMessage');
    await nextOf(a, 'SendMessage');
    await p.msClient.editMessage({
      principal: who,
      messageId: m1.id,
      text: 'changed',
      tags: [],
      setTags: false,
      attachments: undefined,
    });
    await p.msClient.deleteMessage({ principal: who, messageId: m0.id });
    const got = await list(a, 'edits');
    expect(got).toEqual([{ id: BigInt(m1.id), channel: 'edits', nick: 'editor', content: 'changed' }]);
    expect(a.frames).toEqual([]);
  });
});

describe('nicknames and accounts (§7.4)', () => {
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: p.nats.url });
  });
  afterAll(async () => {
    await nc.close();
  });

  it('N1–N4 guest nicks are unique case-insensitively and freed at once on disconnect', async () => {
    const a = await ready('alice');
    const b = await client();
    b.write('00 02');
    await b.expect('00 00');
    expect(await auth(b, 'alice')).toBe('0200');
    expect(await auth(b, 'Alice')).toBe('0200');
    expect(await auth(b, 'bob')).toBe('0201');
    a.close();
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    await waitFor(async () => (await auth(c, 'alice')) === '0201', 5_000, 'alice free again');
  });

  it('N5 a guest "dave" live in ssh-frontend blocks irc "DAVE"', async () => {
    const presence = await Presence.open({ nc, prefix: p.nats.prefix, names: identityNameAuthority(p.idClient) });
    const r = await presence.claimGuestNick('dave', { displayNick: 'dave', door: 'ssh-frontend', sessionId: 'ssh-1' });
    expect(r.ok).toBe(true);
    try {
      const c = await client();
      c.write('00 02');
      await c.expect('00 00');
      expect(await auth(c, 'DAVE')).toBe('0200');
    } finally {
      if (r.ok) await r.lease.release();
    }
  });

  it('N6/N10 an account name on plaintext is refused, with or without a token, and no token is logged', async () => {
    const id = await registerAccount(p, 'carol');
    const pw = await p.idClient.createAppPassword({ userId: id, name: 'irc', scopes: ['irc'] });
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    expect(await auth(c, 'carol')).toBe('0200');
    expect(await auth(c, `carol#${pw.secret}`)).toBe('0200');
    expect(await auth(c, `CAROL#${pw.secret}`)).toBe('0200');
    expect(irc.logs.join('\n')).not.toContain(pw.secret);
  });

  it('N12 invalid nicks are refused', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    for (const n of ['', ' bob', 'bob ', 'a\u0007b', 'x\u202Ey']) expect(await auth(c, n)).toBe('0200');
  });

  it('N13 the 10th refusal is answered 02 00, then the connection is closed (IRCB_ERR_AUTH_ATTEMPTS)', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    for (let i = 1; i <= 10; i++) expect(await auth(c, '')).toBe('0200');
    expect(await c.waitClosed()).toBe(0);
    expect(irc.logs.some((l) => l.includes('IRCB_ERR_AUTH_ATTEMPTS'))).toBe(true);
  });
});

describe('isolation (§6.7)', () => {
  it('random and mutated bytes on one socket never affect a second, well-behaved connection', async () => {
    const good = await ready('fuzzgood');
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const valid = [
      encodeClientFrame({ type: 'Hello', version: 2 }),
      encodeClientFrame({ type: 'Authenticate', nick: 'fz' }),
      encodeClientFrame({ type: 'SendMessage', channel: 'general', content: 'fuzz' }),
      encodeClientFrame({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n }),
      Uint8Array.of(4),
    ];
    for (let run = 0; run < 60; run++) {
      const bad = await client();
      const parts: number[] = [];
      for (let i = 0; i < 1 + Math.floor(rnd() * 6); i++) parts.push(...valid[Math.floor(rnd() * valid.length)]!);
      for (let i = 0; i < 3; i++) parts[Math.floor(rnd() * parts.length)] = Math.floor(rnd() * 256);
      if (rnd() < 0.3) for (let i = 0; i < 64; i++) parts.push(Math.floor(rnd() * 256));
      bad.write(Uint8Array.from(parts));
      if (run % 10 === 9) {
        good.send({ type: 'ListChannels' });
        expect((await nextOf(good, 'ListChannels')).channels).toContain('general');
      }
    }
    for (const c of clients.splice(1)) c.close();
    good.frames.length = 0;
    good.write(V13);
    expect((await nextOf(good, 'SendMessage')).message.nick).toBe('fuzzgood');
  });
});
