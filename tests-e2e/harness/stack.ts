/**
 * The real system as processes, for end-to-end and fault tests: identity, message-store, irc-binary
 * and ws-messenger from their built dist/, on fixed free ports (so a restarted process comes back
 * where clients expect it), each data owner with its own fresh database, one NATS prefix per stack.
 */
import { ServiceProcess, freePort } from './proc';

export interface StackOptions {
  /** NATS server URL and the unique subject prefix for this stack. */
  readonly natsUrl: string;
  readonly natsPrefix: string;
  /** Fresh databases, one per data owner. */
  readonly identityDbUrl: string;
  readonly messagesDbUrl: string;
  /** Extra environment for every process (e.g. LOG_LEVEL). */
  readonly env?: Record<string, string>;
  /** Which doors to start (default both). */
  readonly doors?: ReadonlyArray<'irc-binary' | 'ws-messenger'>;
  /** A NATS URL per service (e.g. with its own credentials); default `natsUrl` for all. */
  readonly natsUrlFor?: (service: 'identity' | 'message-store' | 'irc-binary' | 'ws-messenger') => string;
}

export interface Stack {
  readonly identity: ServiceProcess;
  readonly messageStore: ServiceProcess;
  readonly irc?: ServiceProcess;
  readonly ws?: ServiceProcess;
  readonly ports: { identity: number; messageStore: number; irc: number; ws: number };
  readonly identityAddr: string;
  readonly messageStoreAddr: string;
  all(): ServiceProcess[];
  stop(): Promise<void>;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const ports = {
    identity: await freePort(),
    messageStore: await freePort(),
    irc: await freePort(),
    ws: await freePort(),
  };
  const base: Record<string, string> = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    NATS_URL: o.natsUrl,
    NATS_PREFIX: o.natsPrefix,
    HOST: '127.0.0.1',
    IDENTITY_ADDR: `127.0.0.1:${ports.identity}`,
    MESSAGE_STORE_ADDR: `127.0.0.1:${ports.messageStore}`,
    IDENTITY_METRICS_PORT: '0',
    MESSAGE_STORE_METRICS_PORT: '0',
    IRCB_METRICS_PORT: '0',
    WSM_METRICS_PORT: '0',
    ...o.env,
  };
  const natsFor = (service: Parameters<NonNullable<StackOptions['natsUrlFor']>>[0]): { NATS_URL: string } => ({
    NATS_URL: o.natsUrlFor?.(service) ?? o.natsUrl,
  });
  const identity = ServiceProcess.node('identity', 'services/identity/dist/src/main.js', {
    ...base,
    ...natsFor('identity'),
    IDENTITY_PORT: String(ports.identity),
    DATABASE_URL: o.identityDbUrl,
    // A login costs 50–250 ms by design; e2e tests register many users, so use the cheap setting.
    IDENTITY_SCRYPT_LOG_N: '12',
  });
  const messageStore = ServiceProcess.node('message-store', 'services/message-store/dist/src/main.js', {
    ...base,
    ...natsFor('message-store'),
    MESSAGE_STORE_PORT: String(ports.messageStore),
    DATABASE_URL: o.messagesDbUrl,
  });
  const doors = o.doors ?? ['irc-binary', 'ws-messenger'];
  const irc = doors.includes('irc-binary')
    ? ServiceProcess.node('irc-binary', 'services/irc-binary/dist/src/main.js', {
        ...base,
        ...natsFor('irc-binary'),
        IRCB_HOST: '127.0.0.1',
        IRCB_PORT: String(ports.irc),
        IRCB_SEND_RATE_PER_S: '0',
        IRCB_IP_SEND_RATE_PER_S: '0',
        IRCB_IP_HISTORY_RATE_PER_S: '0',
        IRCB_CHANNELS: 'general',
      })
    : undefined;
  const ws = doors.includes('ws-messenger')
    ? ServiceProcess.node('ws-messenger', 'services/ws-messenger/dist/src/main.js', {
        ...base,
        ...natsFor('ws-messenger'),
        WSM_HOST: '127.0.0.1',
        WSM_PORT: String(ports.ws),
        WSM_RATE_PER_S: '0',
        WSM_IP_RATE_PER_S: '0',
      })
    : undefined;
  const procs = [identity, messageStore, irc, ws].filter((p): p is ServiceProcess => p !== undefined);
  try {
    await Promise.all([identity.start(), messageStore.start()]);
    await Promise.all([irc?.start(), ws?.start()]);
  } catch (e) {
    await Promise.all(procs.map((p) => p.stop()));
    throw e;
  }
  return {
    identity,
    messageStore,
    ...(irc ? { irc } : {}),
    ...(ws ? { ws } : {}),
    ports,
    identityAddr: `127.0.0.1:${ports.identity}`,
    messageStoreAddr: `127.0.0.1:${ports.messageStore}`,
    all: () => procs,
    stop: async () => {
      for (const p of [...procs].reverse()) await p.stop();
    },
  };
}
