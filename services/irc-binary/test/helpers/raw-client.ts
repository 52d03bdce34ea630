/**
 * A raw dum-dum-irc test client: writes exact bytes, records every byte received (plaintext and,
 * after an upgrade, TLS), decodes server frames, and reports EOF. Never sleeps: waits poll.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { hex, waitFor } from '@hubbub/testing';
import type { ServerFrame } from '../../src/protocol/events';
import { ServerFrameDecoder, encodeClientFrame } from '../../src/protocol/frames';
import type { ClientFrame } from '../../src/protocol/events';

export class RawClient {
  /** Every byte received on the plaintext layer (before an upgrade) or the TLS layer (after). */
  received: Buffer = Buffer.alloc(0);
  /** Bytes received in plaintext after the upgrade started (must stay empty). */
  plaintextAfterUpgrade: Buffer = Buffer.alloc(0);
  frames: ServerFrame[] = [];
  closed = false;
  error: Error | undefined;
  private decoder = new ServerFrameDecoder();
  private consumed = 0;
  private upgrading = false;
  socket: Socket;
  tls: TLSSocket | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (b: Buffer) => {
      if (this.upgrading) this.plaintextAfterUpgrade = Buffer.concat([this.plaintextAfterUpgrade, b]);
      else this.onBytes(b);
    });
    socket.on('close', () => {
      if (!this.tls) this.closed = true;
    });
    socket.on('error', (e) => (this.error = e));
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const s = connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    s.setNoDelay(true);
    return new RawClient(s);
  }

  private onBytes(b: Buffer): void {
    this.received = Buffer.concat([this.received, b]);
    try {
      this.frames.push(...this.decoder.push(b));
    } catch (e) {
      this.error = e as Error;
    }
  }

  write(bytes: string | Uint8Array): void {
    (this.tls ?? this.socket).write(typeof bytes === 'string' ? hex(bytes) : bytes);
  }

  send(...frames: ClientFrame[]): void {
    this.write(Buffer.concat(frames.map((f) => encodeClientFrame(f))));
  }

  /** Waits until `n` more bytes arrived (after those already consumed) and returns them as hex. */
  async read(n: number, timeoutMs = 5_000): Promise<string> {
    await waitFor(() => this.received.length - this.consumed >= n || this.closed, timeoutMs, `${n} bytes`);
    if (this.received.length - this.consumed < n)
      throw new Error(`closed after ${this.received.length - this.consumed} of ${n} bytes`);
    const out = this.received.subarray(this.consumed, this.consumed + n).toString('hex');
    this.consumed += n;
    return out;
  }

  /** Reads exactly the bytes of `expected` (hex) and compares. */
  async expect(expected: string, timeoutMs = 5_000): Promise<void> {
    const want = expected.replace(/\s/g, '');
    const got = await this.read(want.length / 2, timeoutMs);
    if (got !== want) throw new Error(`expected ${want}, got ${got}`);
  }

  /** Waits for the next decoded frame. */
  async nextFrame(timeoutMs = 5_000): Promise<ServerFrame> {
    await waitFor(() => this.frames.length > 0 || this.closed, timeoutMs, 'a frame');
    const f = this.frames.shift();
    if (!f) throw new Error('closed before a frame');
    return f;
  }

  /** Waits for EOF; returns the number of unread bytes that arrived before it. */
  async waitClosed(timeoutMs = 5_000): Promise<number> {
    await waitFor(() => this.closed, timeoutMs, 'close');
    return this.received.length - this.consumed;
  }

  /** §2.8 step 3: start a TLS client handshake on the same TCP connection. */
  async upgrade(options: ConnectionOptions = {}): Promise<TLSSocket> {
    this.upgrading = true;
    this.socket.removeAllListeners('data');
    this.socket.on(
      'data',
      (b: Buffer) => (this.plaintextAfterUpgrade = Buffer.concat([this.plaintextAfterUpgrade, b])),
    );
    const t = tlsConnect({ socket: this.socket, servername: 'localhost', ...options });
    this.tls = t;
    this.received = Buffer.alloc(0);
    this.consumed = 0;
    t.on('data', (b: Buffer) => this.onBytes(b));
    t.on('close', () => (this.closed = true));
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    return t;
  }

  /** HELLO → 00 00 → AUTHENTICATE nick → 02 01. */
  async handshake(nick: string): Promise<void> {
    this.write('00 02');
    await this.expect('00 00');
    this.send({ type: 'Authenticate', nick });
    await this.expect('02 01');
    while (this.frames[0] && (this.frames[0].type === 'Hello' || this.frames[0].type === 'AcknowledgeAuthentication'))
      this.frames.shift();
  }

  close(): void {
    this.tls?.destroy();
    this.socket.destroy();
  }
}
