/**
 * ws-messenger configuration (spec §3.9): environment only, CLI `--host`/`--port` override the env.
 * Every problem is reported at once (loadConfig); unknown `WSM_*` variables are errors.
 */
import { commonSchema, int, list, loadConfig, oneOf, str } from '@hubbub/runtime';
import type { ConfigOf, Env, LoadOptions } from '@hubbub/runtime';

export const DEFAULT_WSM_PORT = 8080;
export const DEFAULT_WSM_METRICS_PORT = 9454;
export const DEFAULT_MAX_FRAME_BYTES = 1_048_576;
export const DEFAULT_MAX_OUTBUF_BYTES = 16_777_216;
export const DEFAULT_MAX_REPLY_BYTES = 8_388_608;
export const DEFAULT_MAX_MESSAGE_BYTES = 65_536;
export const DEFAULT_LIMIT_MESSAGES = 100;
export const DEFAULT_LIMIT_USERS = 100;
export const DEFAULT_UPDATE_MAX_ITEMS = 1000;
export const DEFAULT_MAX_FLOW_USERS = 1000;
export const DEFAULT_RATE_PER_S = 50;
export const DEFAULT_RATE_BURST = 100;
export const DEFAULT_IP_RATE_PER_S = 200;
export const DEFAULT_IP_RATE_BURST = 400;
export const DEFAULT_MAX_CONNECTIONS = 20_000;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
export const DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_HTTP_PENDING = 2_000;
export const DEFAULT_MAX_HTTP_PENDING_PER_IP = 32;
export const DEFAULT_PING_INTERVAL_MS = 20_000;
export const DEFAULT_PING_TIMEOUT_MS = 20_000;
export const DEFAULT_UNAUTH_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_TOKEN_CACHE_MS = 10_000;
export const DEFAULT_BACKEND_TIMEOUT_MS = 2_000;
export const DEFAULT_CHANNEL_FACTS_MS = 60_000;

export const configSchema = {
  logLevel: commonSchema.logLevel,
  natsUrl: commonSchema.natsUrl,
  natsPrefix: commonSchema.natsPrefix,
  host: str({ env: 'WSM_HOST', doc: 'listen address', default: '0.0.0.0' }),
  port: int({
    env: 'WSM_PORT',
    doc: 'HTTP/WebSocket port (0 = any free port)',
    default: DEFAULT_WSM_PORT,
    min: 0,
    max: 65535,
  }),
  opsHost: str({ env: 'WSM_METRICS_HOST', doc: 'address of the ops HTTP server', default: '0.0.0.0' }),
  metricsPort: int({
    env: 'WSM_METRICS_PORT',
    doc: 'ops HTTP port (/healthz, /readyz, /metrics; the public port has no /metrics); 0 = off',
    default: DEFAULT_WSM_METRICS_PORT,
    min: 0,
    max: 65535,
  }),
  maxFrameBytes: int({
    env: 'WSM_MAX_FRAME_BYTES',
    doc: 'largest accepted message (close 1009 above)',
    default: DEFAULT_MAX_FRAME_BYTES,
    min: 1024,
  }),
  maxOutbufBytes: int({
    env: 'WSM_MAX_OUTBUF_BYTES',
    doc: 'bytes queued per connection before it is closed as a slow consumer',
    default: DEFAULT_MAX_OUTBUF_BYTES,
    min: 1024,
  }),
  maxReplyBytes: int({
    env: 'WSM_MAX_REPLY_BYTES',
    doc: 'largest get_update/all_messages reply',
    default: DEFAULT_MAX_REPLY_BYTES,
    min: 4096,
  }),
  maxMessageBytes: int({
    env: 'WSM_MAX_MESSAGE_BYTES',
    doc: 'text + files + emoji of one message',
    default: DEFAULT_MAX_MESSAGE_BYTES,
    min: 1,
  }),
  limitMessages: int({
    env: 'WSM_LIMIT_MESSAGES',
    doc: 'L of all_messages',
    default: DEFAULT_LIMIT_MESSAGES,
    min: 1,
    max: 10_000,
  }),
  limitUsers: int({
    env: 'WSM_LIMIT_USERS',
    doc: 'user_info entries per request (caller included)',
    default: DEFAULT_LIMIT_USERS,
    min: 1,
    max: 1000,
  }),
  updateMaxItems: int({
    env: 'WSM_UPDATE_MAX_ITEMS',
    doc: 'items per get_update reply',
    default: DEFAULT_UPDATE_MAX_ITEMS,
    min: 1,
    max: 4999,
  }),
  maxFlowUsers: int({
    env: 'WSM_MAX_FLOW_USERS',
    doc: 'users of one add_flow',
    default: DEFAULT_MAX_FLOW_USERS,
    min: 2,
    max: 1000,
  }),
  ratePerS: int({
    env: 'WSM_RATE_PER_S',
    doc: 'requests per second per connection (0 = off)',
    default: DEFAULT_RATE_PER_S,
    min: 0,
  }),
  rateBurst: int({ env: 'WSM_RATE_BURST', doc: 'request burst per connection', default: DEFAULT_RATE_BURST, min: 0 }),
  ipRatePerS: int({
    env: 'WSM_IP_RATE_PER_S',
    doc: 'requests per second from one client address over all its connections (an IPv6 address counts as its /64; X-Forwarded-For only from WSM_TRUSTED_PROXIES); over it 429 like WSM_RATE_PER_S; 0 = off (behind a proxy that is not in WSM_TRUSTED_PROXIES every client shares its address)',
    default: DEFAULT_IP_RATE_PER_S,
    min: 0,
  }),
  ipRateBurst: int({
    env: 'WSM_IP_RATE_BURST',
    doc: 'request burst per client address',
    default: DEFAULT_IP_RATE_BURST,
    min: 1,
  }),
  maxConnections: int({
    env: 'WSM_MAX_CONNECTIONS',
    doc: 'connections per instance (HTTP 503 above)',
    default: DEFAULT_MAX_CONNECTIONS,
    min: 1,
  }),
  maxConnectionsPerIp: int({
    env: 'WSM_MAX_CONNECTIONS_PER_IP',
    doc: 'connections per client address, so that one address cannot take every slot of WSM_MAX_CONNECTIONS (an IPv6 address counts as its /64; X-Forwarded-For only from WSM_TRUSTED_PROXIES: behind a proxy not listed there, every client shares its address); HTTP 429 above; 0 = off',
    default: DEFAULT_MAX_CONNECTIONS_PER_IP,
    min: 0,
  }),
  httpRequestTimeoutMs: int({
    env: 'WSM_HTTP_REQUEST_TIMEOUT_MS',
    doc: 'time a new connection has to send its complete HTTP request (TLS handshake included); then 408 and close (slowloris)',
    default: DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
    min: 100,
  }),
  maxHttpPending: int({
    env: 'WSM_MAX_HTTP_PENDING',
    doc: 'connections not (yet) upgraded to WebSocket, in total; more are dropped at accept',
    default: DEFAULT_MAX_HTTP_PENDING,
    min: 1,
  }),
  maxHttpPendingPerIp: int({
    env: 'WSM_MAX_HTTP_PENDING_PER_IP',
    doc: 'the same per peer address, so that one address cannot hold all of WSM_MAX_HTTP_PENDING (connections from WSM_TRUSTED_PROXIES not counted); 0 = off',
    default: DEFAULT_MAX_HTTP_PENDING_PER_IP,
    min: 0,
  }),
  pingIntervalMs: int({
    env: 'WSM_PING_INTERVAL_MS',
    doc: 'WebSocket ping interval',
    default: DEFAULT_PING_INTERVAL_MS,
    min: 100,
  }),
  pingTimeoutMs: int({
    env: 'WSM_PING_TIMEOUT_MS',
    doc: 'close when no pong within this time',
    default: DEFAULT_PING_TIMEOUT_MS,
    min: 100,
  }),
  unauthIdleTimeoutMs: int({
    env: 'WSM_UNAUTH_IDLE_TIMEOUT_MS',
    doc: 'close a never-authenticated connection after this time',
    default: DEFAULT_UNAUTH_IDLE_TIMEOUT_MS,
    min: 100,
  }),
  subscriptionRecheckMs: int({
    env: 'WSM_SUBSCRIPTION_RECHECK_MS',
    doc: 'how often push subscriptions re-verify their token with identity (revocations missed on NATS; also after a NATS reconnect); 0 = only events',
    default: 60_000,
    min: 0,
  }),
  tokenCacheMs: int({
    env: 'WSM_TOKEN_CACHE_MS',
    doc: 'positive token validation cache lifetime (0 = off)',
    default: DEFAULT_TOKEN_CACHE_MS,
    min: 0,
  }),
  channelFactsMs: int({
    env: 'WSM_CHANNEL_FACTS_MS',
    doc: "how long a private flow's member list (from channel events or a lookup) is trusted for push before message-store is asked again (bounds pushes to a removed member whose event was lost; also dropped after a NATS reconnect)",
    default: DEFAULT_CHANNEL_FACTS_MS,
    min: 100,
  }),
  backendTimeoutMs: int({
    env: 'WSM_BACKEND_TIMEOUT_MS',
    doc: 'deadline of identity / message-store calls',
    default: DEFAULT_BACKEND_TIMEOUT_MS,
    min: 50,
  }),
  trustedProxies: list({
    env: 'WSM_TRUSTED_PROXIES',
    doc: 'peers whose X-Forwarded-For is believed: addresses or CIDR ranges (10.0.0.0/8, fd00::/8)',
    default: [],
  }),
  tlsCertFile: str({ env: 'WSM_TLS_CERT_FILE', doc: 'PEM certificate: serve wss:// directly' }).optional(),
  tlsKeyFile: str({ env: 'WSM_TLS_KEY_FILE', doc: 'PEM private key for WSM_TLS_CERT_FILE' }).optional(),
  publicChannels: list({
    env: 'WSM_PUBLIC_CHANNELS',
    doc: 'public channels ensured in message-store at startup (`-` = none)',
    default: ['general'],
    item: /^[^\s]{1,32}$/,
  }),
  identityAddr: str({ env: 'IDENTITY_ADDR', doc: 'identity gRPC address', default: '127.0.0.1:50051' }),
  messageStoreAddr: str({ env: 'MESSAGE_STORE_ADDR', doc: 'message-store gRPC address', default: '127.0.0.1:50052' }),
  postTransport: oneOf({
    env: 'MESSAGE_STORE_POST_TRANSPORT',
    doc: 'how posts reach message-store: nats (request/reply, gRPC as the fallback; docs/adr/0003) or grpc',
    values: ['nats', 'grpc'] as const,
    default: 'nats',
  }),
  identityVerifyTransport: oneOf({
    env: 'WSM_IDENTITY_VERIFY_TRANSPORT',
    doc: 'how VerifyToken reaches identity: nats (request/reply, gRPC as the fallback; docs/adr/0004) or grpc',
    values: ['nats', 'grpc'] as const,
    default: 'nats',
  }),
} as const;

export type Config = ConfigOf<typeof configSchema>;

const tlsPair: NonNullable<LoadOptions['checks']>[number] = (c) => {
  const cert = c['tlsCertFile'];
  const key = c['tlsKeyFile'];
  if (cert !== undefined && key === undefined) return ['WSM_TLS_CERT_FILE is set but WSM_TLS_KEY_FILE is not'];
  if (key !== undefined && cert === undefined) return ['WSM_TLS_KEY_FILE is set but WSM_TLS_CERT_FILE is not'];
  return [];
};

export const loadOptions: LoadOptions = { strictPrefix: 'WSM_', checks: [tlsPair] };

/**
 * `--host H`, `--port N` (or `--host=H`) as env overrides, so they go through the same validation.
 * Returns the problems with unknown flags separately.
 */
export function cliOverrides(argv: readonly string[]): { env: Record<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const names: Record<string, string> = { '--host': 'WSM_HOST', '--port': 'WSM_PORT' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const name = names[flag];
    if (!name) {
      problems.push(`unknown argument ${a} (use --host, --port)`);
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) problems.push(`${flag} needs a value`);
    else env[name] = value;
  }
  return { env, problems };
}

/** Config for tests: defaults plus overrides (never reads process.env). */
export function testConfig(env: Env = {}): Config {
  return loadConfig(
    configSchema,
    { WSM_HOST: '127.0.0.1', WSM_PORT: '0', WSM_METRICS_HOST: '127.0.0.1', WSM_METRICS_PORT: '0', ...env },
    loadOptions,
  );
}
