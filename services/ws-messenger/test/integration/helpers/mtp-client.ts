/** A tiny MTP test client: raw frames in, parsed and raw frames out, no fixed sleeps. */
import WebSocket from 'ws';
import { waitFor } from '@hubbub/testing';

export const JSONAPI = { version: '1.0', revision: '17' };

export interface Frame {
  type: string;
  jsonapi: { version: string; revision: string };
  meta: null;
  data: null | {
    time: number;
    user: Record<string, unknown>[] | null;
    meta: null;
    flow: Record<string, unknown>[] | null;
    message: Record<string, unknown>[] | null;
  };
  errors: { detail: string; code: number; status: string; time: number };
}

export class MtpClient {
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | undefined;
  private read = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      if (isBinary) this.raw.push('<binary>');
      else this.raw.push(d.toString('utf8'));
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
    });
    ws.on('error', () => undefined);
  }

  static async connect(url: string, options: WebSocket.ClientOptions = {}): Promise<MtpClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    const c = new MtpClient(ws);
    await new Promise<void>((ok, fail) => {
      ws.once('open', () => ok());
      ws.once('error', fail);
    });
    return c;
  }

  /** Sends an object as JSON text, or a string/Buffer as is. */
  send(msg: unknown, opts: { binary?: boolean } = {}): void {
    const data = typeof msg === 'string' || Buffer.isBuffer(msg) ? msg : JSON.stringify(msg);
    this.ws.send(data, { binary: opts.binary ?? false });
  }

  /**
   * The next reply's raw text. Unsolicited `update` frames are skipped (they stay in `raw` for
   * `find`/`updates`) unless `withUpdates`.
   */
  async nextRaw(timeoutMs = 5_000, withUpdates = false): Promise<string> {
    for (;;) {
      await waitFor(() => this.raw.length > this.read || this.closed !== undefined, timeoutMs, 'a frame');
      if (this.raw.length <= this.read) throw new Error(`connection closed ${JSON.stringify(this.closed)}`);
      const r = this.raw[this.read++]!;
      if (withUpdates || !r.startsWith('{"type": "update"')) return r;
    }
  }

  async next(timeoutMs = 5_000): Promise<Frame> {
    return JSON.parse(await this.nextRaw(timeoutMs)) as Frame;
  }

  /** Sends and returns the reply (not for subscribed connections expecting updates in between). */
  async req(msg: unknown): Promise<Frame> {
    this.send(msg);
    return this.next();
  }

  async reqRaw(msg: unknown): Promise<string> {
    this.send(msg);
    return this.nextRaw();
  }

  /** Waits for any received frame (read or not) matching `pred`; returns its raw text. */
  async find(pred: (f: Frame, raw: string) => boolean, timeoutMs = 5_000): Promise<string> {
    let hit: string | undefined;
    await waitFor(
      () => {
        hit = this.raw.find((r) => r !== '<binary>' && pred(JSON.parse(r) as Frame, r));
        return hit !== undefined;
      },
      timeoutMs,
      'a matching frame',
    );
    return hit!;
  }

  /** Update frames received so far. */
  updates(): Frame[] {
    return this.raw.filter((r) => r.startsWith('{"type": "update"')).map((r) => JSON.parse(r) as Frame);
  }

  /** Marks every frame received so far as read. */
  skipAll(): void {
    this.read = this.raw.length;
  }

  /** Frames received but not yet read. */
  unread(): string[] {
    return this.raw.slice(this.read);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((r) => {
      this.ws.once('close', () => r());
      if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
      else this.ws.close();
      setTimeout(() => this.ws.terminate(), 1_000).unref();
    });
  }
}

/** A request envelope with the caller first in data.user. */
export function mtp(type: string, user: Record<string, unknown>, data: Record<string, unknown> = {}): unknown {
  return { type, jsonapi: JSONAPI, data: { user: [user], ...data } };
}

/** The envelope's exact text with a given data text (for byte-exact comparisons). */
export function frameText(
  type: string,
  dataText: string,
  detail: string,
  code: number,
  status: string,
  time: number,
): string {
  return (
    `{"type": ${JSON.stringify(type)}, "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": ${dataText}, ` +
    `"errors": {"detail": ${JSON.stringify(detail)}, "code": ${code}, "status": ${JSON.stringify(status)}, "time": ${time}}}`
  );
}
