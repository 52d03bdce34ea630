/** A lean MTP client for benchmarks: one outstanding request at a time per socket; push frames to `onRawUpdate`. */
import WebSocket from 'ws';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export class WsBenchClient {
  closed = false;
  /** Push frames (`update`) go here, undecoded, when set; otherwise they are skipped. */
  onRawUpdate: ((raw: Buffer) => void) | undefined;
  private waiting: ((raw: string) => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      // Every reply starts `{"type": "<name>"`; only push frames are `update`.
      if (d.length > 16 && d[10] === 0x75 && d.toString('latin1', 0, 17) === '{"type": "update"') {
        this.onRawUpdate?.(d);
        return;
      }
      this.waiting.shift()?.(d.toString('utf8'));
    });
    ws.on('close', () => {
      this.closed = true;
    });
    ws.on('error', () => undefined);
  }

  /** Sends raw text; resolves with the raw reply. */
  send(raw: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.ws.send(raw);
    });
  }

  async request(msg: unknown): Promise<Json> {
    return JSON.parse(await this.send(JSON.stringify(msg)));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
      setTimeout(() => {
        this.ws.terminate();
        r();
      }, 2_000).unref();
    });
  }
}

export function openClient(url: string): Promise<WsBenchClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    ws.once('open', () => resolve(new WsBenchClient(ws)));
    ws.once('error', reject);
  });
}

/** Closed-loop request helper (kept separate so a variant with a pipeline depth can slot in). */
export class Pipelined {
  constructor(private readonly c: WsBenchClient) {}
  request(raw: string): Promise<string> {
    return this.c.send(raw);
  }
}

export async function closeAll(cs: WsBenchClient[]): Promise<void> {
  for (let i = 0; i < cs.length; i += 500) await Promise.all(cs.slice(i, i + 500).map((c) => c.close()));
}
