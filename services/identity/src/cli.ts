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
 *   hubbub bans
 *   hubbub address ban <ip|cidr> --reason R [--for D] | address unban <ip|cidr> | address check <ip>
 *
 * Without --password the password is read from stdin (one line; not echoed on a terminal).
 * Add --json for machine-readable output. Exit status: 0 ok, 1 refused by identity, 2 usage.
 */
import type { AppError } from '@hubbub/errors';
import { codeName, isAppError } from '@hubbub/errors';
import { createClient } from '@hubbub/grpc';
import type { PromiseClient } from '@hubbub/grpc';
import { identityV1 } from '@hubbub/proto';
import { loadConfig, str } from '@hubbub/runtime';

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
  bans
  address ban <ip|cidr> --reason R [--for D]
  address unban <ip|cidr>
  address check <ip>
options: --json  print JSON
Passwords not given with --password are read from stdin.`;

class UsageError extends Error {}

interface Parsed {
  args: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['password', 'email', 'display-name', 'reason', 'for', 'until', 'limit']);

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

export async function run(argv: readonly string[], client: Client, out: (s: string) => void): Promise<number> {
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
  switch (`${group ?? ''} ${cmd ?? ''}`.trim()) {
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
    case 'address check': {
      if (!target) throw new UsageError('address check <ip>');
      const r = await client.checkAddressBan({ address: target });
      show(
        r.banned
          ? `banned by ${r.ban!.cidr}: ${r.ban!.ban?.reason ?? ''}`
          : r.throttledSeconds > 0
            ? `locked for ${r.throttledSeconds}s`
            : 'not banned',
        identityV1.CheckAddressBanResponse.toJSON(r),
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${args.join(' ')}"`);
  }
}

async function main(): Promise<void> {
  const cfg = loadConfig(
    { identityAddr: str({ env: 'IDENTITY_ADDR', doc: 'identity gRPC address', default: '127.0.0.1:50051' }) },
    process.env,
  );
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    process.exitCode = argv.length === 0 ? 2 : 0;
    return;
  }
  const client = createClient(identityV1.IdentityServiceService, cfg.identityAddr, { deadlineMs: 10_000 });
  try {
    process.exitCode = await run(argv, client, (s) => process.stdout.write(s + '\n'));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (isAppError(e)) {
      const err: AppError = e;
      process.stderr.write(`identity refused: ${codeName(err.code)} ${err.reason}: ${err.message}\n`);
      process.exitCode = 1;
    } else throw e;
  } finally {
    client.close();
  }
}

if (require.main === module) void main();
