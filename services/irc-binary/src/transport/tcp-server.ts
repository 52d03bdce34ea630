/**
 * The TCP listener: accepts, enforces IRCB_MAX_CONNECTIONS and IRCB_MAX_CONNECTIONS_PER_IP
 * (accepted then closed at once, nothing sent: IRCB_ERR_CONN_LIMIT), and owns the live connections.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { PerAddressLimit } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import type { Door } from '../app/door';
import type { DoorMetrics } from '../app/ports';
import { ErrorCode } from '../protocol/errors';
import { CloseCode, Connection } from './connection';
import type { ConnectionOptions } from './connection';

export interface TcpServerOptions extends ConnectionOptions {
  readonly maxConnections: number;
  /** 0 = no limit. */
  readonly maxConnectionsPerIp: number;
}

export class TcpServer {
  readonly connections = new Set<Connection>();
  private readonly perIp: PerAddressLimit;
  private readonly server: Server;
  private seq = 0;

  constructor(
    private readonly door: Door,
    private readonly o: TcpServerOptions,
    private readonly log: Logger,
    private readonly metrics: DoorMetrics,
    private readonly instanceId: string,
  ) {
    this.perIp = new PerAddressLimit(o.maxConnectionsPerIp);
    this.server = createServer({ noDelay: true, keepAlive: true }, (s) => this.accept(s));
    this.server.on('error', (err) => log.error({ err, code: 'IRCB_LISTEN_ERROR' }, 'listener error'));
  }

  /** Listens; `host` '' = every interface (IPv4 and IPv6). */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      };
      if (host === '') this.server.listen(port, done);
      else this.server.listen(port, host, done);
    });
  }

  get listening(): boolean {
    return this.server.listening;
  }

  private accept(s: Socket): void {
    const ip = s.remoteAddress ?? '?';
    // tryAdd counts the connection only when the instance limit lets it in.
    if (this.connections.size >= this.o.maxConnections || !this.perIp.tryAdd(ip)) {
      this.log.warn({ code: ErrorCode.ConnLimit, peer: ip, open: this.connections.size }, 'connection limit reached');
      this.metrics.connectionClosed(ErrorCode.ConnLimit);
      s.on('error', () => undefined);
      s.destroy();
      return;
    }
    const id = `${this.instanceId}-${(++this.seq).toString(36)}`;
    const log = this.log.child({ conn: id, peer: `${ip}:${s.remotePort ?? 0}` });
    this.metrics.connectionOpened();
    const c = new Connection(s, id, ip, log, this.door, this.o, (conn, code) => this.closed(conn, ip, code));
    this.connections.add(c);
    log.debug('accepted');
  }

  private closed(c: Connection, ip: string, code: string): void {
    if (!this.connections.delete(c)) return;
    this.perIp.remove(ip);
    this.metrics.connectionClosed(code);
    if (code === CloseCode.Peer || code === CloseCode.Shutdown) c.log.debug({ code }, 'closed');
  }

  /** Stops accepting (resolves once the listener is closed). */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
  }

  /** Closes every connection without sending anything (the protocol has no goodbye, §3.11). */
  closeAll(): void {
    for (const c of [...this.connections]) c.close(CloseCode.Shutdown);
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    const stopped = this.stopAccepting();
    this.closeAll();
    await stopped;
  }
}
