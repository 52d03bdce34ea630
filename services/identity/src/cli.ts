/**
 * Operator CLI (`pnpm hubbub …`): talks to the running identity service over gRPC at
 * IDENTITY_ADDR. A second composition root next to main.ts, so it reads process.env too.
 *
 *   hubbub user add <name> [--password P] [--email E] [--display-name D] [--sysop]
 *   hubbub user list [query] [--deleted] [--limit N]
 *   hubbub user show <name>
 *   hubbub user role <name> user|sysop
 *   hubbub user ban <name> --reason R [--for 1h|3d|30m|permanent] [--until ISO-8601]
 *   hubbub user unban <name>
 *   hubbub user reset-password <name> [--password P]
 *   hubbub user revoke-sessions <name>
 *   hubbub user unlock <name> | address unlock <ip>
 *   hubbub bans
 *   hubbub address ban <ip|cidr> --reason R [--for D] | address unban <ip|cidr> | address check <ip>
 *   hubbub channel create <slug> [--title T] [--info I] [--kind group|channel|board] [--private] [--no-guests]
 *                                [--owner NAME]
 *   hubbub broadcast <text> [--channel slug,slug…] [--key K]
 *
 * `channel create` and `broadcast` are message-store's operator subjects `<NATS_PREFIX>.admin.channel.create`
 * and `<NATS_PREFIX>.admin.broadcast` (proto3 JSON), asked over NATS at NATS_URL, which must carry the operator
 * NATS user where deploy/nats/hubbub-auth.conf is in force; `--owner` is resolved to an account id by identity.
 *
 * Without --password the password is read from stdin (one line; not echoed on a terminal).
 * Add --json for machine-readable output. Exit status: 0 ok, 1 refused by identity or message-store (or no
 * answer over NATS), 2 usage.
 */
import { AppError, Code, codeName, errors, isAppError } from '@hubbub/errors';
import { createClient } from '@hubbub/grpc';
import type { PromiseClient } from '@hubbub/grpc';
import {
  connectNats,
  decodeJson,
  parseNatsServers,
  encodeJson,
  isNoResponders,
  isTimeout,
  replyError,
} from '@hubbub/nats';
import type { JsonCodec, NatsConnection } from '@hubbub/nats';
import { identityV1, messagesV1, subjects } from '@hubbub/proto';
import type { Subjects } from '@hubbub/proto';
import { commonSchema, createLogger, loadConfig, str } from '@hubbub/runtime';
import { addressThrottleKey } from './app/addresses';

type Client = PromiseClient<typeof identityV1.IdentityServiceService>;

const USAGE = `usage: hubbub <command> (identity at $IDENTITY_ADDR, default 127.0.0.1:50051)
  user add <name> [--password P] [--email E] [--display-name D] [--sysop]
  user list [query] [--deleted] [--limit N]
  user show <name>
  user role <name> user|sysop
  user ban <name> --reason R [--for 1h|3d|30m|permanent] [--until 2030-01-01T00:00:00Z]
  user unban <name>
  user reset-password <name> [--password P]
  user revoke-sessions <name>
  user unlock <name>            (lifts a failed-login delay or lock)
  bans
  address ban <ip|cidr> --reason R [--for D]
  address unban <ip|cidr>
  address check <ip>
  address unlock <ip>
  channel create <slug> [--title T] [--info I] [--kind group|channel|board] [--private] [--no-guests] [--owner NAME]
  broadcast <text> [--channel slug,slug...] [--key K]
    (message-store over NATS at $NATS_URL, subjects under $NATS_PREFIX, default hubbub)
options: --json  print JSON
Passwords not given with --password are read from stdin.`;

class UsageError extends Error {}

interface Parsed {
  args: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set([
  'password',
  'email',
  'display-name',
  'reason',
  'for',
  'until',
  'limit',
  'title',
  'info',
  'kind',
  'owner',
  'channel',
  'key',
]);

/** Sends an operator request (proto3 JSON) and returns the reply's bytes; an error reply is thrown as AppError. */
export type OperatorRequest = (subject: string, body: Uint8Array) => Promise<Uint8Array>;

/** Operator requests over a NATS connection (the operator's NATS user). */
export function natsOperatorRequest(nc: NatsConnection, timeoutMs = 10_000): OperatorRequest {
  return async (subject, body) => {
    let r;
    try {
      r = await nc.request(subject, body, { timeout: timeoutMs });
    } catch (e) {
      if (isNoResponders(e))
        throw errors.unavailable('NO_RESPONDERS', `nothing serves ${subject}: is message-store up?`);
      if (isTimeout(e))
        throw new AppError(Code.DEADLINE_EXCEEDED, 'NATS_TIMEOUT', `no answer on ${subject} in ${timeoutMs} ms`);
      throw e;
    }
    const err = replyError(r);
    if (err) throw err;
    return r.data;
  };
}

const CHANNEL_KINDS: Record<string, messagesV1.ChannelKind> = {
  group: messagesV1.ChannelKind.CHANNEL_KIND_GROUP,
  channel: messagesV1.ChannelKind.CHANNEL_KIND_CHANNEL,
  board: messagesV1.ChannelKind.CHANNEL_KIND_BOARD,
};

export function parseArgs(argv: readonly string[]): Parsed {
  const args: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) flags.set(name, a.slice(eq + 1));
      else if (VALUE_FLAGS.has(name)) {
        const v = argv[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        flags.set(name, v);
      } else flags.set(name, true);
    } else args.push(a);
  }
  return { args, flags };
}

/** `1h`, `30m`, `7d`, `2w`, `permanent` → milliseconds (undefined = permanent). */
export function parseDuration(s: string): number | undefined {
  if (s === 'permanent' || s === 'forever') return undefined;
  const m = /^(\d+)\s*([smhdw])$/.exec(s.trim());
  if (!m) throw new UsageError(`bad duration "${s}" (use e.g. 30m, 1h, 7d, 2w or permanent)`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[
    m[2] as 's' | 'm' | 'h' | 'd' | 'w'
  ];
  return Number(m[1]) * unit;
}

async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    return new Promise((resolve, reject) => {
      let s = '';
      const onData = (b: Buffer): void => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.setRawMode(false);
            stdin.pause();
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(s);
            return;
          }
          if (ch === '\u0003') {
            stdin.setRawMode(false);
            reject(new UsageError('cancelled'));
            return;
          }
          if (ch === '\u007f') s = s.slice(0, -1);
          else s += ch;
        }
      };
      stdin.on('data', onData);
    });
  }
  let data = '';
  for await (const chunk of stdin) data += String(chunk);
  return data.split(/\r?\n/)[0] ?? '';
}

function fmtUser(u: identityV1.User): string {
  const role = identityV1.roleToJSON(u.role).replace('ROLE_', '').toLowerCase();
  const ban = u.ban
    ? ` banned ${u.ban.until ? 'until ' + u.ban.until.toISOString() : 'permanently'} (${u.ban.reason})`
    : '';
  return `${u.id.padStart(6)}  ${u.username.padEnd(24)} ${role.padEnd(6)} ${u.deleted ? 'deleted ' : ''}created ${u.createdAt?.toISOString() ?? '-'}${ban}`;
}

export interface OperatorTarget {
  readonly request: OperatorRequest;
  /** NATS_PREFIX. */
  readonly prefix: string;
}

export async function run(
  argv: readonly string[],
  client: Client,
  out: (s: string) => void,
  ops?: OperatorTarget,
): Promise<number> {
  const { args, flags } = parseArgs(argv);
  const json = flags.has('json');
  const show = (human: string, obj: unknown): void => out(json ? JSON.stringify(obj) : human);
  const flag = (n: string): string | undefined => {
    const v = flags.get(n);
    return typeof v === 'string' ? v : undefined;
  };
  const userByName = async (name: string | undefined): Promise<identityV1.User> => {
    if (!name) throw new UsageError('a user name is required');
    return (await client.getUserByName({ username: name })).user!;
  };
  const [group, cmd, target, extra] = args;
  const by = 'cli';
  /** One operator request to message-store: proto3 JSON out, proto3 JSON back. */
  const ask = async <Req, Res>(
    subject: (s: Subjects) => string,
    request: JsonCodec<Req>,
    req: Req,
    response: JsonCodec<Res>,
  ): Promise<Res> => {
    if (!ops) throw new UsageError(`${group ?? ''} needs NATS (NATS_URL)`);
    return decodeJson(response, await ops.request(subject(subjects(ops.prefix)), encodeJson(request, req)));
  };
  switch (group === 'broadcast' ? 'broadcast' : `${group ?? ''} ${cmd ?? ''}`.trim()) {
    case 'user add': {
      if (!cmd || !target) throw new UsageError('user add <name>');
      const password = flag('password') ?? (await readSecret(`Password for ${target}: `));
      const r = await client.register({
        username: target,
        password,
        displayName: flag('display-name') ?? '',
        email: flag('email') ?? '',
        bio: '',
        avatar: '',
        isBot: flags.has('bot'),
        clientAddress: 'cli',
        sshPublicKey: '',
        createSession: false,
        sessionTtlSeconds: 0,
      });
      let u = r.user!;
      if (flags.has('sysop')) u = (await client.setRole({ userId: u.id, role: identityV1.Role.ROLE_SYSOP, by })).user!;
      show(`created ${fmtUser(u)}`, identityV1.User.toJSON(u));
      return 0;
    }
    case 'user list': {
      const limit = Number(flag('limit') ?? '1000');
      const users: identityV1.User[] = [];
      let token = '';
      do {
        const p = await client.listUsers({
          query: target ?? '',
          pageSize: Math.min(limit - users.length, 1000),
          pageToken: token,
          changedSince: undefined,
          includeDeleted: flags.has('deleted'),
        });
        users.push(...p.users);
        token = p.nextPageToken;
      } while (token !== '' && users.length < limit);
      show(
        users.map(fmtUser).join('\n') || '(no users)',
        users.map((u) => identityV1.User.toJSON(u)),
      );
      return 0;
    }
    case 'user show': {
      const u = await userByName(target);
      const full = await client.getUser({ userId: u.id, includePrivate: true });
      const p = full.private!;
      show(
        `${fmtUser(u)}\n  display name: ${u.displayName}\n  email: ${p.email || '-'}\n  last login: ${p.lastLoginAt?.toISOString() ?? 'never'} ${p.lastLoginAddress}`,
        identityV1.GetUserResponse.toJSON(full),
      );
      return 0;
    }
    case 'user role': {
      const u = await userByName(target);
      const role = { user: identityV1.Role.ROLE_USER, sysop: identityV1.Role.ROLE_SYSOP }[extra ?? ''];
      if (role === undefined) throw new UsageError('user role <name> user|sysop');
      const r = await client.setRole({ userId: u.id, role, by });
      show(`role set: ${fmtUser(r.user!)}`, identityV1.User.toJSON(r.user!));
      return 0;
    }
    case 'user ban': {
      const u = await userByName(target);
      const reason = flag('reason');
      if (!reason) throw new UsageError('user ban <name> --reason R [--for D | --until T]');
      let until: Date | undefined;
      if (flag('until')) {
        until = new Date(flag('until')!);
        if (Number.isNaN(until.getTime())) throw new UsageError('--until must be an ISO-8601 time');
      } else if (flag('for')) {
        const ms = parseDuration(flag('for')!);
        until = ms === undefined ? undefined : new Date(Date.now() + ms);
      }
      const r = await client.ban({ userId: u.id, reason, until, by });
      show(`banned: ${fmtUser(r.user!)}`, identityV1.User.toJSON(r.user!));
      return 0;
    }
    case 'user unban': {
      const u = await userByName(target);
      const r = await client.unban({ userId: u.id, by });
      show(`unbanned: ${fmtUser(r.user!)}`, identityV1.User.toJSON(r.user!));
      return 0;
    }
    case 'user reset-password': {
      const u = await userByName(target);
      const password = flag('password') ?? (await readSecret(`New password for ${u.username}: `));
      await client.resetPassword({ userId: u.id, username: '', newPassword: password });
      show(`password reset for ${u.username}; all sessions revoked`, { ok: true, userId: u.id });
      return 0;
    }
    case 'user revoke-sessions': {
      const u = await userByName(target);
      const r = await client.revokeAllTokens({ userId: u.id });
      show(`revoked ${r.revoked} session(s) of ${u.username}`, { revoked: r.revoked });
      return 0;
    }
    case 'bans': {
      const r = await client.listBans({});
      const lines = [
        ...r.users.map(fmtUser),
        ...r.addresses.map(
          (a) =>
            `${a.cidr.padEnd(30)} ${a.ban?.until ? 'until ' + a.ban.until.toISOString() : 'permanent'} ${a.ban?.reason ?? ''}`,
        ),
      ];
      show(lines.join('\n') || '(no active bans)', identityV1.ListBansResponse.toJSON(r));
      return 0;
    }
    case 'address ban': {
      if (!target) throw new UsageError('address ban <ip|cidr> --reason R');
      const ms = flag('for') ? parseDuration(flag('for')!) : undefined;
      const r = await client.banAddress({
        cidr: target,
        reason: flag('reason') ?? '',
        until: ms === undefined ? undefined : new Date(Date.now() + ms),
        by,
      });
      show(`banned ${r.ban!.cidr}`, identityV1.AddressBan.toJSON(r.ban!));
      return 0;
    }
    case 'address unban': {
      if (!target) throw new UsageError('address unban <ip|cidr>');
      await client.unbanAddress({ cidr: target });
      show(`unbanned ${target}`, { ok: true });
      return 0;
    }
    case 'user unlock':
    case 'address unlock': {
      const user = group === 'user';
      if (!target) throw new UsageError(user ? 'user unlock <name>' : 'address unlock <ip>');
      const r = await client.clearLoginFailures(
        user ? { username: target, address: '' } : { username: '', address: target },
      );
      show(r.cleared > 0 ? `unlocked ${target}` : `${target} was not throttled`, { cleared: r.cleared });
      return 0;
    }
    case 'address check': {
      if (!target) throw new UsageError('address check <ip>');
      const r = await client.checkAddressBan({ address: target });
      // An IPv6 address is locked with its whole /64 (identity counts failures per /64): say so, or the operator
      // looks for the failures under the wrong address.
      const key = addressThrottleKey(target);
      const per = key.endsWith('/64') ? ` (failed logins count per ${key})` : '';
      show(
        r.banned
          ? `banned by ${r.ban!.cidr}: ${r.ban!.ban?.reason ?? ''}`
          : r.throttledSeconds > 0
            ? `locked for ${r.throttledSeconds}s${per}`
            : 'not banned',
        identityV1.CheckAddressBanResponse.toJSON(r),
      );
      return 0;
    }
    case 'channel create': {
      if (!target) throw new UsageError('channel create <slug>');
      const kind = CHANNEL_KINDS[flag('kind') ?? 'group'];
      if (kind === undefined) throw new UsageError('--kind is group, channel or board');
      const owner = flag('owner') ? (await userByName(flag('owner'))).id : '';
      const req = messagesV1.AdminChannelCreateRequest.fromPartial({
        slug: target,
        title: flag('title') ?? '',
        info: flag('info') ?? '',
        kind,
        private: flags.has('private'),
        ...(flags.has('no-guests') ? { allowGuests: false } : {}),
        ownerUserId: owner,
        by,
      });
      const r = await ask(
        (s) => s.adminChannelCreate,
        messagesV1.AdminChannelCreateRequest,
        req,
        messagesV1.AdminChannelCreateResponse,
      );
      const c = r.channel!;
      const kindName = messagesV1.channelKindToJSON(c.kind).replace('CHANNEL_KIND_', '').toLowerCase();
      const visibility = c.visibility === messagesV1.Visibility.VISIBILITY_PRIVATE ? 'private' : 'public';
      show(
        `created channel ${c.slug} (id ${c.id}, ${kindName}, ${visibility})`,
        messagesV1.AdminChannelCreateResponse.toJSON(r),
      );
      return 0;
    }
    case 'broadcast': {
      // `broadcast <text>`: the text is the first argument after the group (quote it in the shell).
      const text = cmd;
      if (!text) throw new UsageError('broadcast <text>');
      const channels = (flag('channel') ?? '')
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
      const req = messagesV1.AdminBroadcastRequest.fromPartial({ text, channels, clientKey: flag('key') ?? '', by });
      const r = await ask(
        (s) => s.adminBroadcast,
        messagesV1.AdminBroadcastRequest,
        req,
        messagesV1.AdminBroadcastResponse,
      );
      show(
        `broadcast to ${r.messages.length} channel(s): ${r.messages.map((m) => `${m.channelId}#${m.id}`).join(' ')}`,
        messagesV1.AdminBroadcastResponse.toJSON(r),
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${args.join(' ')}"`);
  }
}

async function main(): Promise<void> {
  const cfg = loadConfig(
    {
      identityAddr: str({ env: 'IDENTITY_ADDR', doc: 'identity gRPC address', default: '127.0.0.1:50051' }),
      natsUrl: commonSchema.natsUrl,
      natsPrefix: commonSchema.natsPrefix,
    },
    process.env,
  );
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    process.exitCode = argv.length === 0 ? 2 : 0;
    return;
  }
  const client = createClient(identityV1.IdentityServiceService, cfg.identityAddr, { deadlineMs: 10_000 });
  let nc: NatsConnection | undefined;
  try {
    // Only the message-store commands need NATS.
    nc =
      argv[0] === 'channel' || argv[0] === 'broadcast'
        ? await connectNats({
            servers: cfg.natsUrl,
            name: 'hubbub-cli',
            log: createLogger({ service: 'hubbub-cli', level: 'silent' }),
            once: { timeoutMs: 5_000 },
          }).catch((e: unknown) => {
            throw errors.unavailable(
              'NATS_UNREACHABLE',
              `cannot reach NATS at ${parseNatsServers(cfg.natsUrl).servers.join(',')}`,
              e,
            );
          })
        : undefined;
    const ops = nc ? { request: natsOperatorRequest(nc), prefix: cfg.natsPrefix } : undefined;
    process.exitCode = await run(argv, client, (s) => process.stdout.write(s + '\n'), ops);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (isAppError(e)) {
      const err: AppError = e;
      process.stderr.write(`refused: ${codeName(err.code)} ${err.reason}: ${err.message}\n`);
      process.exitCode = 1;
    } else throw e;
  } finally {
    client.close();
    await nc?.close();
  }
}

if (require.main === module) void main();
