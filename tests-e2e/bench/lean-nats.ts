/**
 * A lean NATS requester for load tools: the NATS client protocol on one TCP socket, written by hand so that the
 * generator costs far less CPU and garbage per request than nats.js (no per-request timer, promise, inbox string
 * or message object), and a load tool is not the bottleneck it measures.
 *
 * One wildcard inbox subscription `_INBOX.<random>.*`; request n is published with reply subject `…<n>`, so a
 * reply is matched by parsing a number. Requests queued in one event-loop turn go out in one socket write.
 * Replies are reported through `onReply(n, ok)`: `ok` is false for a services-framework error reply (an HMSG
 * whose headers carry `Nats-Service-Error-Code`) and for "no responders" (status 503).
 *
 * Only what a requester needs: CONNECT, SUB, PUB, MSG/HMSG, PING/PONG, +OK/-ERR/INFO. Load tools only; the
 * services use nats.js.
 */
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

const CRLF = Buffer.from('\r\n');
const ERROR_HEADER = Buffer.from('Nats-Service-Error-Code');
const NO_RESPONDERS = Buffer.from(' 503');

export interface LeanRequester {
  /** Queues request `n` (a non-negative integer, unique among those in flight); sent at the end of this turn. */
  request(n: number, payload: Uint8Array): void;
  close(): Promise<void>;
}

export async function leanRequester(
  url: string,
  subject: string,
  onReply: (n: number, ok: boolean) => void,
  /** Called right before onReply with the reply's payload (a view into the read buffer: copy to keep it). */
  onPayload?: (payload: Uint8Array) => void,
): Promise<LeanRequester> {
  const u = new URL(url.includes('://') ? url : `nats://${url}`);
  const sock: Socket = tcpConnect({ host: u.hostname, port: Number(u.port || 4222), noDelay: true });
  const inbox = `_INBOX.${randomBytes(8).toString('hex')}.`;
  const pubPrefix = `PUB ${subject} ${inbox}`;
  let out: Buffer[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (out.length === 0) return;
    const b = out.length === 1 ? out[0]! : Buffer.concat(out);
    out = [];
    sock.write(b);
  };

  let buf: Buffer = Buffer.alloc(0);
  let ready: () => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  const connected = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  const user = u.username ? `,"user":${JSON.stringify(decodeURIComponent(u.username))}` : '';
  const pass = u.password ? `,"pass":${JSON.stringify(decodeURIComponent(u.password))}` : '';
  let greeted = false;

  /** The number after the inbox prefix in the subject of the MSG line at `start` (HMSG: pass start + 1), or -1. */
  const replyNumber = (line: Buffer, start: number): number => {
    let n = 0;
    let i = start + 4 + inbox.length; // past "MSG " and the inbox prefix
    if (i >= line.length || line[i]! < 48 || line[i]! > 57) return -1;
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
    }
    return n;
  };

  const parse = (): void => {
    let off = 0;
    for (;;) {
      const eol = buf.indexOf(CRLF, off);
      if (eol < 0) break;
      const c0 = buf[off];
      if (c0 === 0x4d /* M */ || c0 === 0x48 /* H */) {
        const hmsg = c0 === 0x48;
        // MSG <subject> <sid> [reply] <len> | HMSG <subject> <sid> [reply] <hlen> <tlen>
        const sp = buf.lastIndexOf(0x20, eol - 1);
        const total = Number(buf.toString('latin1', sp + 1, eol));
        let hlen = 0;
        if (hmsg) {
          const sp2 = buf.lastIndexOf(0x20, sp - 1);
          hlen = Number(buf.toString('latin1', sp2 + 1, sp));
        }
        const end = eol + 2 + total + 2;
        if (end > buf.length) break; // the payload is not all here yet
        const n = replyNumber(buf, off + (hmsg ? 1 : 0));
        let ok = true;
        if (hmsg) {
          const h = buf.subarray(eol + 2, eol + 2 + hlen);
          const statusEnd = h.indexOf(CRLF);
          ok = h.indexOf(ERROR_HEADER) < 0 && h.subarray(0, statusEnd).indexOf(NO_RESPONDERS) < 0;
        }
        if (n >= 0) {
          onPayload?.(buf.subarray(eol + 2 + hlen, eol + 2 + total));
          onReply(n, ok);
        }
        off = end;
        continue;
      }
      const line = buf.toString('latin1', off, eol);
      off = eol + 2;
      if (line.startsWith('PING')) sock.write('PONG\r\n');
      else if (line.startsWith('INFO') && !greeted) {
        greeted = true;
        sock.write(
          `CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1,"name":"lean-bench"${user}${pass}}\r\n` +
            `SUB ${inbox}* 1\r\nPING\r\n`,
        );
      } else if (line.startsWith('PONG')) ready();
      else if (line.startsWith('-ERR')) failed(new Error(`NATS: ${line}`));
    }
    buf = off >= buf.length ? Buffer.alloc(0) : buf.subarray(off);
  };
  sock.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    parse();
  });
  sock.on('error', (e) => failed(e));
  await connected;

  return {
    request(n, payload) {
      out.push(Buffer.from(`${pubPrefix}${n} ${payload.length}\r\n`, 'latin1'), payload as Buffer, CRLF);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        flush();
        sock.end(() => resolve());
        sock.once('close', () => resolve());
      }),
  };
}
