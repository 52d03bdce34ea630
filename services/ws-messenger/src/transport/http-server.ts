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
import type { Duplex } from 'node:stream';
import { extname, join } from 'node:path';
import { handleOpsRequest } from '@hubbub/runtime';
import type { Readiness } from '@hubbub/runtime';
import type { Registry } from 'prom-client';

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
}

export function createHttpServer(o: HttpOptions): Server {
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
  const server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handler) : createPlainServer(handler);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/ws') {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    o.onUpgrade(req, socket, head);
  });
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.keepAliveTimeout = 5_000;
  return server;
}
