/**
 * The public HTTP port (spec §2.1, §3.8): the browser client at `/` and `/static/<file>`, `/healthz` and
 * `/readyz`, and the WebSocket upgrade on `/ws` only. `/metrics` is not here (every other path is 404 by
 * §3.8, and strangers have no business reading the instance's counters): it is on the ops port
 * (WSM_METRICS_PORT), like every other service's.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createServer as createPlainServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { extname, join } from 'node:path';
import { PerAddressLimit, handleOpsRequest, normalizeAddress } from '@hubbub/runtime';
import type { Logger, Readiness } from '@hubbub/runtime';
import type { Registry } from 'prom-client';
import { WsmErrorCode } from '../protocol/status';

export const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

/** Loads the client's files once at start (they are small; no per-request disk access). */
export function loadStatic(publicDir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const add = (urlPath: string, file: string): void => {
    files.set(urlPath, { body: readFileSync(file), type: TYPES[extname(file)] ?? 'application/octet-stream' });
  };
  add('/', join(publicDir, 'index.html'));
  const staticDir = join(publicDir, 'static');
  for (const name of readdirSync(staticDir)) {
    if (/^[A-Za-z0-9._-]+$/.test(name) && !name.startsWith('.')) add(`/static/${name}`, join(staticDir, name));
  }
  return files;
}

export interface HttpOptions {
  readonly tls?: { cert: Buffer; key: Buffer } | undefined;
  readonly files: Map<string, StaticFile>;
  readonly registry: Registry;
  readonly readiness: Readiness;
  /** Called for an upgrade on `/ws`; returns false when the connection must be refused (503). */
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly limits: HttpLimits;
  readonly log: Logger;
}

/**
 * Bounds for connections that are not (yet) WebSockets: a slowloris client trickling its headers, or one that
 * connects and sends nothing, would otherwise hold a socket for Node's defaults (headers 60 s, checked every
 * 30 s; TLS handshake 120 s) and in any number, none of which WSM_MAX_CONNECTIONS sees (it counts upgrades).
 */
export interface HttpLimits {
  /** Time from accept to the complete request (TLS handshake included); then 408 and close. */
  readonly requestTimeoutMs: number;
  /** Sockets not handed to the WebSocket layer, in total; more are dropped at accept. */
  readonly maxPending: number;
  /** The same per peer address (0 = off); connections from trusted proxies are not counted per address. */
  readonly maxPendingPerIp: number;
  readonly isTrustedProxy: (address: string) => boolean;
}

/** The largest request head accepted (431 above); pinned so that NODE_OPTIONS cannot raise it. */
export const MAX_HEADER_BYTES = 16_384;

/** How long a refused connection may take to accept its answer before it is dropped anyway. */
const REFUSAL_LINGER_MS = 2_000;

/**
 * Answers with a bare HTTP status and closes. The socket is destroyed once the answer is written: `end()` alone
 * only half-closes it, and a peer that never closes its side kept the socket open for good (no HTTP timeout
 * applies to it any more), holding its pending slot, or nothing at all after an upgrade was refused. A peer that
 * does not even read the answer (earlier responses still queued) is dropped after REFUSAL_LINGER_MS.
 */
export function refuseHttp(socket: Duplex, status: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export interface HttpFront {
  readonly server: Server;
  /** Connections not (yet) handed to the WebSocket layer: all of them, or those counted for `addr`. */
  readonly pendingCount: (addr?: string) => number;
  /**
   * Drops them all (shutdown). `closeAllConnections()` does not see a connection still in the TLS handshake, and
   * `close()` would wait for it until its handshake timed out.
   */
  readonly dropPending: () => void;
}

export function createHttpServer(o: HttpOptions): HttpFront {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path !== '/metrics' && handleOpsRequest(req, res, o.registry, o.readiness)) return;
    if (path === '/ws') {
      res
        .writeHead(426, { upgrade: 'websocket', connection: 'Upgrade', 'content-type': 'text/plain' })
        .end('upgrade required\n');
      return;
    }
    const f = o.files.get(path === '/index.html' ? '/' : path);
    if (!f) {
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': f.type,
      'content-length': f.body.length,
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : f.body);
  };
  const { requestTimeoutMs, maxPending, maxPendingPerIp, isTrustedProxy } = o.limits;
  const httpOptions = {
    headersTimeout: requestTimeoutMs,
    requestTimeout: requestTimeoutMs,
    // Node checks both timeouts only this often (default 30 s, which would add up to 30 s to each).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(requestTimeoutMs / 4))),
    maxHeaderSize: MAX_HEADER_BYTES,
  };
  const server = o.tls
    ? createHttpsServer(
        { ...httpOptions, cert: o.tls.cert, key: o.tls.key, handshakeTimeout: requestTimeoutMs },
        handler,
      )
    : createPlainServer(httpOptions, handler);

  // Raw TCP sockets not handed to the WebSocket layer yet (the 'connection' event comes before TLS).
  const pending = new Map<Socket, string | undefined>();
  const perIp = new PerAddressLimit(maxPendingPerIp);
  const release = (socket: Socket): void => {
    if (!pending.has(socket)) return;
    const addr = pending.get(socket);
    pending.delete(socket);
    if (addr !== undefined) perIp.remove(addr);
  };
  server.on('connection', (socket: Socket) => {
    const addr = normalizeAddress(socket.remoteAddress ?? '');
    // Behind a proxy every connection has the proxy's address; only the total applies to those.
    const counted = isTrustedProxy(addr) ? undefined : addr;
    if (pending.size >= maxPending || (counted !== undefined && !perIp.tryAdd(counted))) {
      o.log.warn(
        { addr, pending: pending.size, code: WsmErrorCode.TooManyConnections },
        'connection refused: too many pending HTTP connections',
      );
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    pending.set(socket, counted);
    socket.once('close', () => release(socket));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/ws') {
      refuseHttp(socket, '403 Forbidden');
      return;
    }
    // From here the WebSocket limits (WSM_MAX_CONNECTIONS, WSM_MAX_CONNECTIONS_PER_IP) count it. Over TLS
    // the upgrade's socket wraps the raw one that 'connection' counted.
    const raw = socket as Socket & { _parent?: unknown };
    release(o.tls && raw._parent ? (raw._parent as Socket) : raw);
    o.onUpgrade(req, socket, head);
  });
  // Sockets past the TLS handshake (HTTP is only spoken on those).
  const secured = new WeakSet<Duplex>();
  if (o.tls) server.on('secureConnection', (socket: Duplex) => secured.add(socket));
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    // https reports a failed or timed-out TLS handshake as a clientError too. No HTTP answer can be sent on such a
    // socket: it waited for a handshake that never came, and the socket stayed open (and counted as pending) for
    // as long as the peer kept it, a silent client included. It is dropped.
    if (o.tls && !secured.has(socket)) {
      socket.destroy();
      return;
    }
    // The statuses Node itself would send: a request not complete in time, an oversized head, else 400.
    const status =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : '400 Bad Request';
    refuseHttp(socket, status);
  });
  server.keepAliveTimeout = 5_000;
  return {
    server,
    pendingCount: (addr) => (addr === undefined ? pending.size : perIp.count(addr)),
    dropPending: () => {
      for (const socket of [...pending.keys()]) socket.destroy();
    },
  };
}
