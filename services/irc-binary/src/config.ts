/**
 * irc-binary configuration (spec §3.11, §5.2): one env schema, the dumdum-server compatible CLI on
 * top of it (CLI over env over default), and every problem reported at once.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ConfigError, LOG_LEVELS, bool, commonSchema, int, list, loadConfig, oneOf, str } from '@hubbub/runtime';
import type { ConfigOf, Env, LogLevel } from '@hubbub/runtime';

export const DEFAULT_PORT = 6667;
export const DEFAULT_METRICS_PORT = 9453;
export const DEFAULT_CHANNELS: readonly string[] = ['general'];
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_AUTH_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_AUTH_FAILURES = 10;
export const DEFAULT_MAX_OUTBUF_BYTES = 1_048_576;
export const DEFAULT_MAX_PENDING_FRAMES = 256;
export const DEFAULT_SEND_RATE_PER_S = 20;
export const DEFAULT_SEND_BURST = 40;
export const DEFAULT_HISTORY_RATE_PER_S = 10;
export const DEFAULT_HISTORY_BURST = 20;
export const DEFAULT_IP_SEND_RATE_PER_S = 40;
export const DEFAULT_IP_SEND_BURST = 80;
export const DEFAULT_IP_HISTORY_RATE_PER_S = 20;
export const DEFAULT_IP_HISTORY_BURST = 40;
export const DEFAULT_MAX_CONNECTIONS = 20_000;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 0;
export const DEFAULT_BACKEND_TIMEOUT_MS = 2_000;
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
export const MAX_CHANNEL_NAME_BYTES = 32;

export const schema = {
  logLevel: oneOf<LogLevel>({
    env: 'LOG_LEVEL',
    doc: 'pino log level (CLI -v: info, -vv: debug)',
    values: LOG_LEVELS,
    default: 'warn',
  }),
  natsUrl: commonSchema.natsUrl,
  natsPrefix: commonSchema.natsPrefix,
  identityAddr: str({ env: 'IDENTITY_ADDR', doc: 'identity gRPC address', default: '127.0.0.1:50051' }),
  messageStoreAddr: str({ env: 'MESSAGE_STORE_ADDR', doc: 'message-store gRPC address', default: '127.0.0.1:50052' }),
  postTransport: oneOf({
    env: 'MESSAGE_STORE_POST_TRANSPORT',
    doc: 'how posts reach message-store: nats (request/reply, gRPC as the fallback; docs/adr/0003) or grpc',
    values: ['nats', 'grpc'] as const,
    default: 'nats',
  }),
  host: str({ env: 'IRCB_HOST', doc: 'listen address (--host); empty = all interfaces, IPv4 and IPv6', default: '' }),
  port: int({
    env: 'IRCB_PORT',
    doc: 'listen port (--port); 0 = ephemeral',
    default: DEFAULT_PORT,
    min: 0,
    max: 65535,
  }),
  channels: list({
    env: 'IRCB_CHANNELS',
    doc: 'channels ensured at startup, comma-separated (-c)',
    default: DEFAULT_CHANNELS,
  }),
  tlsCertFile: str({
    env: 'IRCB_TLS_CERT_FILE',
    doc: 'PEM certificate chain (--cert CERT[:KEY]); enables TLS',
  }).optional(),
  tlsKeyFile: str({ env: 'IRCB_TLS_KEY_FILE', doc: 'PEM private key; defaults to the certificate file' }).optional(),
  opsHost: str({ env: 'IRCB_METRICS_HOST', doc: 'address of the ops HTTP server', default: '0.0.0.0' }),
  metricsPort: int({
    env: 'IRCB_METRICS_PORT',
    doc: 'ops HTTP port (/healthz, /readyz, /metrics); 0 = off',
    default: DEFAULT_METRICS_PORT,
    min: 0,
    max: 65535,
  }),
  helloTimeoutMs: int({
    env: 'IRCB_HELLO_TIMEOUT_MS',
    doc: 'HELLO deadline after accept',
    default: DEFAULT_HELLO_TIMEOUT_MS,
    min: 1,
  }),
  tlsHandshakeTimeoutMs: int({
    env: 'IRCB_TLS_HANDSHAKE_TIMEOUT_MS',
    doc: 'TLS handshake deadline',
    default: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
    min: 1,
  }),
  authTimeoutMs: int({
    env: 'IRCB_AUTH_TIMEOUT_MS',
    doc: 'successful AUTHENTICATE deadline after the server HELLO',
    default: DEFAULT_AUTH_TIMEOUT_MS,
    min: 1,
  }),
  maxAuthFailures: int({
    env: 'IRCB_MAX_AUTH_FAILURES',
    doc: 'refused AUTHENTICATEs before the connection is closed',
    default: DEFAULT_MAX_AUTH_FAILURES,
    min: 1,
  }),
  allowPlaintextTokens: bool({
    env: 'IRCB_ALLOW_PLAINTEXT_TOKENS',
    doc: 'allow name#token on non-TLS connections',
    default: false,
  }),
  maxOutbufBytes: int({
    env: 'IRCB_MAX_OUTBUF_BYTES',
    doc: 'per-connection unsent output limit (slow reader)',
    default: DEFAULT_MAX_OUTBUF_BYTES,
    min: 1024,
  }),
  maxPendingFrames: int({
    env: 'IRCB_MAX_PENDING_FRAMES',
    doc: 'decoded frames waiting per connection before reading pauses',
    default: DEFAULT_MAX_PENDING_FRAMES,
    min: 1,
  }),
  accountRecheckMs: int({
    env: 'IRCB_ACCOUNT_RECHECK_MS',
    doc: 'how often connected accounts are checked for bans and deletions missed on NATS (also after a NATS reconnect); 0 = only events',
    default: 60_000,
    min: 0,
  }),
  sendRatePerS: int({
    env: 'IRCB_SEND_RATE_PER_S',
    doc: 'SEND_MESSAGE token refill rate per connection; 0 = unlimited',
    default: DEFAULT_SEND_RATE_PER_S,
    min: 0,
  }),
  sendBurst: int({
    env: 'IRCB_SEND_BURST',
    doc: 'SEND_MESSAGE token bucket capacity',
    default: DEFAULT_SEND_BURST,
    min: 1,
  }),
  historyRatePerS: int({
    env: 'IRCB_HISTORY_RATE_PER_S',
    doc: 'LIST_MESSAGES per connection per second beyond the burst; later requests wait (in order) instead of being dropped; 0 = unlimited',
    default: DEFAULT_HISTORY_RATE_PER_S,
    min: 0,
  }),
  historyBurst: int({
    env: 'IRCB_HISTORY_BURST',
    doc: 'LIST_MESSAGES a connection may send at once before IRCB_HISTORY_RATE_PER_S applies',
    default: DEFAULT_HISTORY_BURST,
    min: 1,
  }),
  ipSendRatePerS: int({
    env: 'IRCB_IP_SEND_RATE_PER_S',
    doc: 'SEND_MESSAGE per second from one client address over all its connections (an IPv6 address counts as its /64); over it dropped like IRCB_SEND_RATE_PER_S; 0 = unlimited (set 0 behind a proxy that hides client addresses)',
    default: DEFAULT_IP_SEND_RATE_PER_S,
    min: 0,
  }),
  ipSendBurst: int({
    env: 'IRCB_IP_SEND_BURST',
    doc: 'SEND_MESSAGE token bucket capacity per client address',
    default: DEFAULT_IP_SEND_BURST,
    min: 1,
  }),
  ipHistoryRatePerS: int({
    env: 'IRCB_IP_HISTORY_RATE_PER_S',
    doc: 'LIST_MESSAGES per second from one client address over all its connections; over it requests wait like IRCB_HISTORY_RATE_PER_S; 0 = unlimited',
    default: DEFAULT_IP_HISTORY_RATE_PER_S,
    min: 0,
  }),
  ipHistoryBurst: int({
    env: 'IRCB_IP_HISTORY_BURST',
    doc: 'LIST_MESSAGES token bucket capacity per client address',
    default: DEFAULT_IP_HISTORY_BURST,
    min: 1,
  }),
  maxConnections: int({
    env: 'IRCB_MAX_CONNECTIONS',
    doc: 'connections per instance',
    default: DEFAULT_MAX_CONNECTIONS,
    min: 1,
  }),
  maxConnectionsPerIp: int({
    env: 'IRCB_MAX_CONNECTIONS_PER_IP',
    doc: 'connections per source address (an IPv6 address counts as its /64); 0 = off',
    default: DEFAULT_MAX_CONNECTIONS_PER_IP,
    min: 0,
  }),
  backendTimeoutMs: int({
    env: 'IRCB_BACKEND_TIMEOUT_MS',
    doc: 'identity / message-store call budget',
    default: DEFAULT_BACKEND_TIMEOUT_MS,
    min: 1,
  }),
  presenceTtlMs: int({
    env: 'IRCB_PRESENCE_TTL_MS',
    doc: 'presence lease; renewed every third of it',
    default: DEFAULT_PRESENCE_TTL_MS,
    min: 3,
  }),
  instanceId: str({
    env: 'IRCB_INSTANCE_ID',
    doc: 'instance id in idempotency keys and logs; default random',
    default: '',
    pattern: /^[A-Za-z0-9_.-]{0,40}$/,
  }),
} as const;

export type EnvConfig = ConfigOf<typeof schema>;

/** The effective configuration: env values with the CLI applied. */
export interface Config extends Omit<EnvConfig, 'instanceId'> {
  readonly instanceId: string;
  /** `--max-messages` was given (accepted and ignored, D1). */
  readonly maxMessagesIgnored: number | undefined;
}

export const USAGE = `usage: irc-binary [-h] [-v] [-c CHANNELS [CHANNELS ...]] [--host HOST] [--port PORT] [--cert CERT[:KEY]] [--max-messages N]

dum-dum-irc protocol v2 server (hubbub irc-binary)

options:
  -h, --help            show this help message and exit
  -v, --verbose         increase logging (-v info, -vv debug); default LOG_LEVEL or warn
  -c, --channels CHANNELS [CHANNELS ...]
                        channels ensured at startup, in order (repeatable; default: general)
  --host HOST           listen address (default: all interfaces)
  --port PORT           listen port (default: 6667; 0 = ephemeral)
  --cert CERT[:KEY]     PEM certificate (and key) enabling the TLS upgrade; split at the first ':'
  --max-messages N      accepted for compatibility and ignored (history is persistent)

Every other setting is an environment variable (IRCB_*, NATS_URL, IDENTITY_ADDR, MESSAGE_STORE_ADDR).
`;

/** What the command line said. */
export interface CliArgs {
  help: boolean;
  verbose: number;
  channels?: string[];
  host?: string;
  port?: number;
  certFile?: string;
  keyFile?: string;
  maxMessages?: number;
}

/** Parses dumdum-server's flags. Problems are usage errors (exit 2). */
export function parseArgs(argv: readonly string[]): { args: CliArgs; problems: string[] } {
  const args: CliArgs = { help: false, verbose: 0 };
  const problems: string[] = [];
  const isFlag = (s: string | undefined): boolean => s !== undefined && /^-[A-Za-z-]/.test(s);
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const value = (flag: string): string | undefined => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined || isFlag(v)) {
        problems.push(`argument ${flag}: expected one argument`);
        return undefined;
      }
      i++;
      return v;
    };
    if (a === '-h' || a === '--help') args.help = true;
    else if (/^-v+$/.test(a)) args.verbose += a.length - 1;
    else if (a === '--verbose') args.verbose++;
    else if (a === '-c' || a === '--channels') {
      const names: string[] = [];
      if (inline !== undefined) names.push(inline);
      while (argv[i + 1] !== undefined && !isFlag(argv[i + 1])) names.push(argv[++i]!);
      if (names.length === 0) problems.push(`argument ${a}: expected at least one argument`);
      args.channels = [...(args.channels ?? []), ...names];
    } else if (a === '--host') {
      const v = value(a);
      if (v !== undefined) args.host = v;
    } else if (a === '--port') {
      const v = value(a);
      if (v !== undefined) {
        if (!/^\d+$/.test(v) || Number(v) > 65535) problems.push(`argument --port: invalid port value: '${v}'`);
        else args.port = Number(v);
      }
    } else if (a === '--cert') {
      const v = value(a);
      if (v !== undefined) {
        // D15: split at the first ':' (use the env variables for paths that contain ':').
        const at = v.indexOf(':');
        args.certFile = at < 0 ? v : v.slice(0, at);
        args.keyFile = at < 0 ? v : v.slice(at + 1);
        if (args.certFile === '' || args.keyFile === '')
          problems.push(`argument --cert: expected CERT[:KEY], got '${v}'`);
      }
    } else if (a === '--max-messages') {
      const v = value(a);
      if (v !== undefined) {
        if (!/^-?\d+$/.test(v)) problems.push(`argument --max-messages: invalid int value: '${v}'`);
        else args.maxMessages = Number(v);
      }
    } else problems.push(`unrecognized arguments: ${argv[i]}`);
  }
  return { args, problems };
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Duplicates collapse keeping the first (§3.11). */
export function uniqueInOrder(names: readonly string[]): string[] {
  return [...new Set(names)];
}

export interface BuildResult {
  readonly config?: Config;
  /** Usage errors (unknown flags, bad values): exit 2 with the usage. */
  readonly usageProblems: readonly string[];
  /** Configuration problems: exit 2, listing every one. */
  readonly problems: readonly string[];
  readonly help: boolean;
}

/**
 * Env + CLI → Config. Pure apart from checking that certificate/key files are readable (startup
 * must fail before listening, §3.11).
 */
export function buildConfig(env: Env, argv: readonly string[] = [], canRead = defaultCanRead): BuildResult {
  const { args, problems: usageProblems } = parseArgs(argv);
  if (args.help) return { usageProblems: [], problems: [], help: true };
  const problems: string[] = [];
  let envCfg: EnvConfig | undefined;
  try {
    envCfg = loadConfig(schema, env, { strictPrefix: 'IRCB_' });
  } catch (e) {
    if (e instanceof ConfigError) problems.push(...e.problems);
    else throw e;
  }
  if (usageProblems.length > 0) return { usageProblems, problems, help: false };

  const verboseLevel: LogLevel | undefined = args.verbose >= 2 ? 'debug' : args.verbose === 1 ? 'info' : undefined;
  // Checked even when env values failed, so that every problem is reported at once.
  const envChannels =
    envCfg?.channels ??
    (env['IRCB_CHANNELS'] ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
  const channels = uniqueInOrder(args.channels ?? (envChannels.length > 0 ? envChannels : DEFAULT_CHANNELS));
  for (const c of channels) {
    if (c.length === 0) problems.push('channel name is empty');
    else if (utf8Bytes(c) > MAX_CHANNEL_NAME_BYTES)
      problems.push(`channel name "${c}" is ${utf8Bytes(c)} bytes; at most ${MAX_CHANNEL_NAME_BYTES} UTF-8 bytes`);
  }
  if (channels.length === 0) problems.push('no channels configured');
  const certFile = args.certFile ?? (envCfg ? envCfg.tlsCertFile : env['IRCB_TLS_CERT_FILE'] || undefined);
  const keyFile = args.keyFile ?? (envCfg ? envCfg.tlsKeyFile : env['IRCB_TLS_KEY_FILE'] || undefined) ?? certFile;
  if (keyFile !== undefined && certFile === undefined)
    problems.push('IRCB_TLS_KEY_FILE is set but IRCB_TLS_CERT_FILE is not');
  if (certFile !== undefined && !canRead(certFile)) problems.push(`cannot read certificate file ${certFile}`);
  if (keyFile !== undefined && keyFile !== certFile && !canRead(keyFile))
    problems.push(`cannot read key file ${keyFile}`);
  if (problems.length > 0 || !envCfg) return { usageProblems: [], problems, help: false };

  const config: Config = {
    ...envCfg,
    logLevel: verboseLevel ?? envCfg.logLevel,
    host: args.host ?? envCfg.host,
    port: args.port ?? envCfg.port,
    channels,
    tlsCertFile: certFile,
    tlsKeyFile: certFile === undefined ? undefined : keyFile,
    instanceId: envCfg.instanceId || randomBytes(4).toString('hex'),
    maxMessagesIgnored: args.maxMessages,
  };
  return { config: Object.freeze(config), usageProblems: [], problems: [], help: false };
}

function defaultCanRead(path: string): boolean {
  try {
    accessSync(path, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** A config for tests: defaults, port 0, no metrics port, overridden by `over`. */
export function testConfig(over: Partial<Config> = {}): Config {
  const r = buildConfig({ IRCB_PORT: '0', IRCB_METRICS_PORT: '0', IRCB_HOST: '127.0.0.1' });
  if (!r.config) throw new Error(`test config: ${[...r.problems, ...r.usageProblems].join('; ')}`);
  return { ...r.config, ...over };
}
