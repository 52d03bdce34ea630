/**
 * §7.2 handshake and state over real TCP (in-memory backends): H1–H15.
 */
import { RawClient } from '../helpers/raw-client';
import { logLines, startMemoryServer } from '../helpers/memory-server';
import type { MemoryServer } from '../helpers/memory-server';

const V6 = '02 05 61 6c 69 63 65';
const V13 = '03 07 67 65 6e 65 72 61 6c 00 15 68 65 6c 6c 6f 20 66 72 6f 6d 20 64 64 5f 69 6e 74 65 72 6f 70';
const V15 = '05 07 67 65 6e 65 72 61 6c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00';

let s: MemoryServer;
const clients: RawClient[] = [];
async function client(): Promise<RawClient> {
  const c = await RawClient.connect(s.app.port);
  clients.push(c);
  return c;
}
function codes(): unknown[] {
  return logLines(s.logs)
    .filter((l) => l['msg'] === 'connection closed on error')
    .map((l) => l['code']);
}

beforeAll(async () => {
  s = await startMemoryServer({ helloTimeoutMs: 1_000, authTimeoutMs: 1_500 });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await s.app.close();
});

describe('handshake (§7.2)', () => {
  it('H1 00 02 → 00 00', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
  });

  it('H2 00 01 → 01 02, then 00 02 → 00 00 on the same connection', async () => {
    const c = await client();
    c.write('00 01');
    await c.expect('01 02');
    c.write('00 02');
    await c.expect('00 00');
  });

  it('H3 HELLO, then AUTHENTICATE "alice" → 02 01', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    c.write(V6);
    await c.expect('02 01');
  });

  it('H4 HELLO and AUTHENTICATE in one write: closed, nothing sent (IRCB_ERR_EARLY_DATA)', async () => {
    const c = await client();
    c.write('00 02' + V6);
    expect(await c.waitClosed()).toBe(0);
    expect(codes()).toContain('IRCB_ERR_EARLY_DATA');
  });

  it('H5 AUTHENTICATE first: closed (IRCB_ERR_STATE)', async () => {
    const c = await client();
    c.write(V6);
    expect(await c.waitClosed()).toBe(0);
    expect(codes()).toContain('IRCB_ERR_STATE');
  });

  it.each(['01', 'ff'])('H6 %s first: closed (IRCB_ERR_UNKNOWN_TYPE)', async (b) => {
    const c = await client();
    c.write(b);
    expect(await c.waitClosed()).toBe(0);
    expect(codes()).toContain('IRCB_ERR_UNKNOWN_TYPE');
  });

  it('H7 READY, then 00 02: closed', async () => {
    const c = await client();
    await c.handshake('h7');
    c.write('00 02');
    expect(await c.waitClosed()).toBe(0);
  });

  it('H8 READY, then a second AUTHENTICATE: closed', async () => {
    const c = await client();
    await c.handshake('h8');
    c.write('02 03 62 6f 62');
    expect(await c.waitClosed()).toBe(0);
  });

  it('H9 SEND_MESSAGE before authenticating: closed', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    c.write(V13);
    expect(await c.waitClosed()).toBe(0);
  });

  it('H10 (scaled: IRCB_HELLO_TIMEOUT_MS=1000) silent client closed after the hello timeout, zero bytes', async () => {
    const c = await client();
    const t0 = Date.now();
    expect(await c.waitClosed(3_000)).toBe(0);
    expect(c.received.length).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(codes()).toContain('IRCB_ERR_HELLO_TIMEOUT');
  });

  it('H11 (scaled: IRCB_AUTH_TIMEOUT_MS=1500) no AUTHENTICATE: closed after the auth timeout', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 00');
    const t0 = Date.now();
    expect(await c.waitClosed(3_000)).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(codes()).toContain('IRCB_ERR_AUTH_TIMEOUT');
  });

  it('H12 H1–H3 sent one byte per write with 1 ms gaps: same replies', async () => {
    const c = await client();
    const bytesOf = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
    const slow = async (h: string): Promise<void> => {
      for (const b of bytesOf(h)) {
        c.write(Uint8Array.of(b));
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    await slow('00 01');
    await c.expect('01 02');
    await slow('00 02');
    await c.expect('00 00');
    await slow(V6.replace('61 6c 69 63 65', '68 31 32 78 78'));
    await c.expect('02 01');
  });

  it('H13 READY, V13 then ff in one write: stored and delivered to others; the sender is closed', async () => {
    const a = await client();
    const b = await client();
    await a.handshake('h13a');
    await b.handshake('h13b');
    const before = s.store.messages.length;
    a.write(V13.replace('6c 69 63 65', '6c 69 63 65') + ' ff');
    const f = await b.nextFrame();
    expect(f).toMatchObject({
      type: 'SendMessage',
      message: { channel: 'general', nick: 'h13a', content: 'hello from dd_interop' },
    });
    await a.waitClosed();
    expect(s.store.messages.length).toBe(before + 1);
  });

  it('H14 READY, V13 immediately followed by V15: the reply contains the message just sent', async () => {
    const a = await client();
    await a.handshake('h14');
    a.write(V13 + V15);
    const echo = await a.nextFrame();
    expect(echo.type).toBe('SendMessage');
    const list = await a.nextFrame();
    expect(list.type).toBe('ListMessages');
    if (echo.type !== 'SendMessage' || list.type !== 'ListMessages') return;
    expect(list.messages.map((m) => m.id)).toContain(echo.message.id);
  });

  it('H15 after 00 00, V6 immediately followed by V13 in one write: 02 01, then the echo', async () => {
    const a = await client();
    a.write('00 02');
    await a.expect('00 00');
    a.write(V6.replace('61 6c 69 63 65', '68 31 35 7a 7a') + V13);
    await a.expect('02 01');
    expect(await a.nextFrame()).toMatchObject({ type: 'Hello' });
    expect(await a.nextFrame()).toMatchObject({ type: 'AcknowledgeAuthentication', success: true });
    expect(await a.nextFrame()).toMatchObject({ type: 'SendMessage', message: { nick: 'h15zz' } });
  });

  it('2.6 transcript: LIST_CHANNELS → V10, V13 → V14 with a fresh id, V15 → the same record', async () => {
    s.store.messages.length = 0; // "when that is the only message in general"
    const a = await client();
    await a.handshake('alice');
    a.write('04');
    await a.expect('04 00 08 07 67 65 6e 65 72 61 6c');
    a.frames.length = 0;
    a.write(V13);
    const echo = await a.nextFrame();
    if (echo.type !== 'SendMessage') throw new Error('no echo');
    expect(echo.message).toMatchObject({ channel: 'general', nick: 'alice', content: 'hello from dd_interop' });
    expect(echo.message.id >> 63n).toBe(0n);
    a.write(V15);
    const list = await a.nextFrame();
    expect(list).toEqual({ type: 'ListMessages', messages: [echo.message] });
    // The 45-byte record of V16, with this message's id.
    const idHex = echo.message.id.toString(16).padStart(16, '0');
    const all = a.received.toString('hex');
    const record =
      idHex + '0767656e6572616c' + '05616c696365' + '0015' + Buffer.from('hello from dd_interop').toString('hex');
    expect(all.endsWith('03' + record + '0500002d' + record)).toBe(true);
  });
});
