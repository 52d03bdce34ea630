import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hex } from '@hubbub/testing';
import { ClientType } from './constants';
import { ErrorCode, isProtocolError } from './errors';
import {
  ALLOWED_CLIENT_TYPES,
  NEED_DATA,
  PAUSED,
  ServerConnection,
  State,
  TRANSITIONS,
  transitionsMermaid,
} from './machine';
import type { Transition } from './machine';

const OPTS = {
  nowMs: 1_000,
  helloTimeoutMs: 10_000,
  tlsHandshakeTimeoutMs: 10_000,
  authTimeoutMs: 60_000,
  maxAuthFailures: 10,
};
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function make(over: Partial<typeof OPTS> = {}): { c: ServerConnection; log: Transition[] } {
  const c = new ServerConnection({ ...OPTS, ...over });
  const log: Transition[] = [];
  c.onTransition = (t) => log.push(t);
  return { c, log };
}

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/** Drives a plaintext connection to READY as "alice". */
function ready(): ServerConnection {
  const { c } = make();
  c.receive(hex('00 02'));
  expect(c.nextEvent()).toEqual({ type: 'Hello', version: 2 });
  c.send({ type: 'Hello', usingSsl: false });
  c.receive(hex('02 05 61 6c 69 63 65'));
  expect(c.nextEvent()).toEqual({ type: 'Authenticate', nick: 'alice' });
  c.send({ type: 'AcknowledgeAuthentication', success: true });
  expect(c.state).toBe(State.Ready);
  return c;
}

describe('ServerConnection transition table', () => {
  it('allows exactly the client frames of spec §3.1 in each state', () => {
    const names = (s: State): number[] => [...ALLOWED_CLIENT_TYPES[s]].sort();
    expect(names(State.AwaitingClientHello)).toEqual([ClientType.Hello]);
    expect(names(State.AwaitingAuthentication)).toEqual([ClientType.Authenticate]);
    expect(names(State.Ready)).toEqual([ClientType.SendMessage, ClientType.ListChannels, ClientType.ListMessages]);
    for (const s of [
      State.AwaitingServerHello,
      State.AwaitingVersionReply,
      State.TlsHandshake,
      State.Authenticating,
      State.Closed,
    ])
      expect(names(s)).toEqual([]);
  });
  it('has no way out of CLOSED', () => {
    expect(TRANSITIONS[State.Closed]).toEqual({});
  });
});

describe('ServerConnection handshake (§2.6, §3.1)', () => {
  it('H1/H3 plaintext: HELLO → 00 00 → AUTHENTICATE → 02 01 → READY, with the state sequence', () => {
    const { c, log } = make();
    c.receive(hex('00 02'));
    expect(c.nextEvent()).toEqual({ type: 'Hello', version: 2 });
    expect(toHex(c.send({ type: 'Hello', usingSsl: false }))).toBe('0000');
    expect(c.nextEvent()).toBe(NEED_DATA);
    c.receive(hex('02 05 61 6c 69 63 65'));
    expect(c.nextEvent()).toEqual({ type: 'Authenticate', nick: 'alice' });
    expect(c.nextEvent()).toBe(PAUSED);
    expect(toHex(c.send({ type: 'AcknowledgeAuthentication', success: true }))).toBe('0201');
    expect(log.map((t) => `${t.from} -${t.input}-> ${t.to}`)).toEqual([
      'AWAITING_CLIENT_HELLO -recv:Hello(v2)-> AWAITING_SERVER_HELLO',
      'AWAITING_SERVER_HELLO -send:Hello(plain)-> AWAITING_AUTHENTICATION',
      'AWAITING_AUTHENTICATION -recv:Authenticate-> AUTHENTICATING',
      'AUTHENTICATING -send:Ack(accepted)-> READY',
    ]);
    expect(c.nextDeadlineMs).toBeUndefined();
  });

  it('H2 INCOMPATIBLE_VERSION allows a retry on the same connection', () => {
    const { c } = make();
    c.receive(hex('00 01'));
    expect(c.nextEvent()).toEqual({ type: 'Hello', version: 1 });
    expect(c.nextEvent()).toBe(PAUSED);
    expect(toHex(c.send({ type: 'IncompatibleVersion', version: 2 }))).toBe('0102');
    expect(c.state).toBe(State.AwaitingClientHello);
    c.receive(hex('00 02'));
    expect(c.nextEvent()).toEqual({ type: 'Hello', version: 2 });
    expect(toHex(c.send({ type: 'Hello', usingSsl: false }))).toBe('0000');
  });

  it('answers a pipelined HELLO v1 + HELLO v2 one by one (only HELLO v2 forbids pipelining)', () => {
    const { c } = make();
    c.receive(hex('00 01 00 02'));
    expect(c.nextEvent()).toEqual({ type: 'Hello', version: 1 });
    expect(c.nextEvent()).toBe(PAUSED);
    c.send({ type: 'IncompatibleVersion', version: 2 });
    expect(c.nextEvent()).toEqual({ type: 'Hello', version: 2 });
  });

  it('H4 pipelined HELLO + AUTHENTICATE is a silent close (IRCB_ERR_EARLY_DATA), no server HELLO', () => {
    const { c } = make();
    c.receive(hex('00 02 02 05 61 6c 69 63 65'));
    const e = errorOf(() => c.nextEvent());
    expect(isProtocolError(e)).toBe(true);
    expect(e).toMatchObject({ code: ErrorCode.EarlyData, side: 'remote', wireCode: 'close-silently' });
    expect(c.state).toBe(State.Closed);
    expect(() => c.send({ type: 'Hello', usingSsl: false })).toThrow();
  });

  it('even one pipelined byte after HELLO v2 is IRCB_ERR_EARLY_DATA', () => {
    const { c } = make();
    c.receive(hex('00'));
    expect(c.nextEvent()).toBe(NEED_DATA);
    c.receive(hex('02 ff'));
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.EarlyData });
  });

  it('H5 AUTHENTICATE before HELLO is IRCB_ERR_STATE as soon as the type byte is read', () => {
    const { c } = make();
    c.receive(hex('02'));
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.State });
    expect(c.state).toBe(State.Closed);
  });

  it.each(['01', 'ff', '06'])('H6 type byte %s first is IRCB_ERR_UNKNOWN_TYPE', (b) => {
    const { c } = make();
    c.receive(hex(b));
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.UnknownType });
  });

  it.each([
    ['H7 a second HELLO', '00 02'],
    ['H8 a second AUTHENTICATE', '02 03 62 6f 62'],
  ])('%s in READY is IRCB_ERR_STATE', (_n, bytes) => {
    const c = ready();
    c.receive(hex(bytes).subarray(0, 1));
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.State });
  });

  it.each([
    ['SEND_MESSAGE', '03'],
    ['LIST_CHANNELS', '04'],
    ['LIST_MESSAGES', '05'],
    ['HELLO', '00'],
  ])('H9 %s before authentication is IRCB_ERR_STATE', (_n, b) => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    c.receive(hex(b));
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.State });
  });

  it('H15 a frame pipelined after AUTHENTICATE is parsed only after the ACK, in the new state', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    c.receive(hex('02 05 61 6c 69 63 65 04'));
    expect(c.nextEvent()).toMatchObject({ type: 'Authenticate' });
    expect(c.nextEvent()).toBe(PAUSED);
    expect(c.bufferedBytes).toBe(1);
    c.send({ type: 'AcknowledgeAuthentication', success: true });
    expect(c.nextEvent()).toEqual({ type: 'ListChannels' });
  });

  it('the same pipelined frame after a refused AUTHENTICATE is IRCB_ERR_STATE', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    c.receive(hex('02 05 61 6c 69 63 65 04'));
    c.nextEvent();
    c.send({ type: 'AcknowledgeAuthentication', success: false });
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.State });
  });

  it('N1–N3 a refused nick allows a retry on the same connection', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    c.receive(hex('02 05 61 6c 69 63 65'));
    c.nextEvent();
    expect(toHex(c.send({ type: 'AcknowledgeAuthentication', success: false }))).toBe('0200');
    expect(c.state).toBe(State.AwaitingAuthentication);
    c.receive(hex('02 03 62 6f 62'));
    expect(c.nextEvent()).toEqual({ type: 'Authenticate', nick: 'bob' });
    c.send({ type: 'AcknowledgeAuthentication', success: true });
    expect(c.state).toBe(State.Ready);
  });

  it('N13 the 10th refusal is sent, then the machine closes with IRCB_ERR_AUTH_ATTEMPTS', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    for (let i = 1; i <= 10; i++) {
      c.receive(hex('02 01 78'));
      expect(c.nextEvent()).toEqual({ type: 'Authenticate', nick: 'x' });
      expect(toHex(c.send({ type: 'AcknowledgeAuthentication', success: false }))).toBe('0200');
      expect(c.state).toBe(i < 10 ? State.AwaitingAuthentication : State.Closed);
    }
    expect(c.error).toMatchObject({ code: ErrorCode.AuthAttempts });
  });

  it('a refusal because the backend is unavailable does not count (§3.4)', () => {
    const { c } = make({ maxAuthFailures: 2 });
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    for (let i = 0; i < 5; i++) {
      c.receive(hex('02 01 78'));
      c.nextEvent();
      c.send({ type: 'AcknowledgeAuthentication', success: false }, { countFailure: false });
    }
    expect(c.state).toBe(State.AwaitingAuthentication);
    expect(c.authFailures).toBe(0);
  });

  it('READY frames are decoded in order and the state stays READY', () => {
    const c = ready();
    c.receive(
      hex('03 07 67 65 6e 65 72 61 6c 00 01 61 04 05 01 61 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 01'),
    );
    expect(c.nextEvent()).toEqual({ type: 'SendMessage', channel: 'general', content: 'a' });
    expect(c.nextEvent()).toEqual({ type: 'ListChannels' });
    expect(c.nextEvent()).toEqual({ type: 'ListMessages', channel: 'a', before: 0n, after: 0n });
    expect(c.nextEvent()).toBe(NEED_DATA);
    expect(c.bufferedBytes).toBe(2);
  });

  it('H13 frames before a bad byte are returned; the bad byte then closes', () => {
    const c = ready();
    c.receive(hex('03 07 67 65 6e 65 72 61 6c 00 01 61 ff'));
    expect(c.nextEvent()).toMatchObject({ type: 'SendMessage' });
    expect(errorOf(() => c.nextEvent())).toMatchObject({ code: ErrorCode.UnknownType });
  });

  it('only READY may send broadcasts and list replies', () => {
    const { c } = make();
    expect(errorOf(() => c.send({ type: 'ListChannels', channels: [] }))).toMatchObject({ side: 'local' });
    const r = ready();
    expect(toHex(r.send({ type: 'ListChannels', channels: ['general'] }))).toBe('040008' + '0767656e6572616c');
  });
});

describe('ServerConnection TLS (§2.8)', () => {
  it('HELLO 00 01 → TLS_HANDSHAKE (nothing parsed) → established → AWAITING_AUTHENTICATION', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    expect(toHex(c.send({ type: 'Hello', usingSsl: true }))).toBe('0001');
    expect(c.state).toBe(State.TlsHandshake);
    expect(c.nextEvent()).toBe(PAUSED);
    c.tlsEstablished();
    expect(c.state).toBe(State.AwaitingAuthentication);
  });
  it('a failed handshake closes with IRCB_ERR_TLS_HANDSHAKE', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: true });
    expect(c.tlsFailed('bad record')).toMatchObject({ code: ErrorCode.TlsHandshake, side: 'remote' });
    expect(c.state).toBe(State.Closed);
  });
  it('tlsEstablished outside TLS_HANDSHAKE is local misuse', () => {
    const { c } = make();
    expect(errorOf(() => c.tlsEstablished())).toMatchObject({ side: 'local', code: ErrorCode.LocalMisuse });
  });
});

describe('ServerConnection timers (time only through tick)', () => {
  it('H10 hello timer: expires 10 000 ms after accept, not before', () => {
    const { c } = make();
    expect(c.nextDeadlineMs).toBe(11_000);
    expect(c.tick(10_999)).toBeUndefined();
    expect(c.tick(11_000)).toMatchObject({ code: ErrorCode.HelloTimeout });
    expect(c.state).toBe(State.Closed);
    expect(c.nextDeadlineMs).toBeUndefined();
  });
  it('the hello timer stops at HELLO v2 but not at HELLO v1', () => {
    const { c } = make();
    c.receive(hex('00 01'));
    c.nextEvent();
    c.send({ type: 'IncompatibleVersion', version: 2 });
    expect(c.nextDeadlineMs).toBe(11_000);
    c.receive(hex('00 02'));
    c.nextEvent();
    c.tick(5_000);
    c.send({ type: 'Hello', usingSsl: false });
    expect(c.nextDeadlineMs).toBe(65_000);
  });
  it('H11 auth timer: 60 000 ms after the server HELLO', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: false });
    expect(c.tick(60_999)).toBeUndefined();
    expect(c.tick(61_000)).toMatchObject({ code: ErrorCode.AuthTimeout });
  });
  it('T4 TLS timer: 10 000 ms after HELLO 00 01', () => {
    const { c } = make();
    c.receive(hex('00 02'));
    c.nextEvent();
    c.send({ type: 'Hello', usingSsl: true });
    expect(c.nextDeadlineMs).toBe(11_000);
    expect(c.tick(11_000)).toMatchObject({ code: ErrorCode.TlsTimeout });
  });
  it('READY has no timer', () => {
    const c = ready();
    expect(c.nextDeadlineMs).toBeUndefined();
    expect(c.tick(10_000_000)).toBeUndefined();
  });
});

describe('PROTOCOL.md', () => {
  it('embeds the state diagram generated from TRANSITIONS', () => {
    const doc = readFileSync(join(__dirname, '..', '..', 'PROTOCOL.md'), 'utf8');
    expect(doc).toContain('```mermaid\n' + transitionsMermaid() + '\n```');
  });
});
