/** Shared setup for identity's integration tests: a fresh database and NATS prefix, identity on port 0. */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { createClient } from '@hubbub/grpc';
import type { PromiseClient } from '@hubbub/grpc';
import { identityV1 } from '@hubbub/proto';
import { createLogger, loadConfig } from '@hubbub/runtime';
import { createTestDatabase, createTestNats } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import { identitySchema } from '../src/config';
import type { IdentityConfig } from '../src/config';
import { start } from '../src/server';
import type { IdentityServer, StartDeps } from '../src/server';

export type IdentityClient = PromiseClient<typeof identityV1.IdentityServiceService>;

export const TEST_ENV: Record<string, string> = {
  IDENTITY_PORT: '0',
  IDENTITY_METRICS_PORT: '0',
  IDENTITY_SCRYPT_LOG_N: '4',
  IDENTITY_APP_PASSWORD_SCRYPT_LOG_N: '4',
  LOG_LEVEL: 'silent',
  IDENTITY_REGISTRATIONS_PER_HOUR: '100000',
};

export interface Harness {
  readonly db: TestDatabase;
  readonly nats: TestNats;
  readonly cfg: IdentityConfig;
  readonly servers: IdentityServer[];
  readonly clients: IdentityClient[];
  /** First instance's client. */
  readonly client: IdentityClient;
  /** Starts another identity instance on the same database and prefix (optionally with its own clock). */
  startAnother(deps?: Pick<StartDeps, 'now'>): Promise<{ server: IdentityServer; client: IdentityClient }>;
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const nats = createTestNats();
  const cfg = loadConfig(identitySchema, {
    ...TEST_ENV,
    ...env,
    DATABASE_URL: db.url,
    NATS_URL: nats.url,
    NATS_PREFIX: nats.prefix,
  });
  const servers: IdentityServer[] = [];
  const clients: IdentityClient[] = [];
  const log = createLogger({ service: 'identity-test', level: cfg.logLevel });
  const startAnother = async (
    deps: Pick<StartDeps, 'now'> = {},
  ): Promise<{ server: IdentityServer; client: IdentityClient }> => {
    const server = await start(cfg, { ...deps, log });
    const client = createClient(identityV1.IdentityServiceService, `127.0.0.1:${server.port}`);
    servers.push(server);
    clients.push(client);
    return { server, client };
  };
  try {
    await startAnother();
  } catch (e) {
    await db.drop();
    await nats.cleanup();
    throw e;
  }
  return {
    db,
    nats,
    cfg,
    servers,
    clients,
    client: clients[0]!,
    startAnother,
    close: async () => {
      for (const c of clients) c.close();
      for (const s of servers) await s.close();
      await db.drop();
      await nats.cleanup();
    },
  };
}

export function registerReq(
  username: string,
  over: Partial<identityV1.RegisterRequest> = {},
): identityV1.RegisterRequest {
  return {
    username,
    password: 'correct horse battery',
    displayName: '',
    email: '',
    bio: '',
    avatar: '',
    isBot: false,
    clientAddress: '10.0.0.1',
    sshPublicKey: '',
    createSession: false,
    sessionTtlSeconds: 0,
    ...over,
  };
}

export function authReq(
  username: string,
  password: string,
  clientAddress = '10.0.0.1',
  ttl = 0,
): identityV1.AuthenticateRequest {
  return { username, password, clientAddress, sessionTtlSeconds: ttl };
}

function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

/** A fresh ed25519 OpenSSH public-key line, its blob and fingerprint. */
export function ed25519Line(comment = 'me@host'): { line: string; blob: Buffer; fingerprint: string } {
  const { publicKey } = generateKeyPairSync('ed25519');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(x)]);
  const fingerprint = 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
  return { line: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, blob, fingerprint };
}

const BUNDLE_CONTEXT = Buffer.from('hubbub-p2p/bundle/v1\0', 'latin1');

/** A signed p2p bundle (specs/p2p.md §3.2) from a 32-byte seed. */
export function makeBundle(
  name: string,
  seed: Buffer,
  createdAtMs = 1_700_000_000_000,
): { bundle: Buffer; fingerprint: string } {
  const priv = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const pub = Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x!, 'base64url');
  const n = Buffer.from(name, 'utf8');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(createdAtMs));
  const body = Buffer.concat([Buffer.from([1, n.length]), n, pub, Buffer.alloc(32, 7), ts]);
  const sig = sign(null, Buffer.concat([BUNDLE_CONTEXT, body]), priv);
  return { bundle: Buffer.concat([body, sig]), fingerprint: createHash('sha256').update(pub).digest('hex') };
}

/** Throttle settings small enough for tests: delays after 3 failures, account lock at 6, address lock at 8. */
export const FAST_THROTTLE_ENV: Readonly<Record<string, string>> = {
  IDENTITY_THROTTLE_FREE_FAILURES: '3',
  IDENTITY_THROTTLE_BASE_DELAY_MS: '200',
  IDENTITY_THROTTLE_MAX_DELAY_MS: '400',
  IDENTITY_THROTTLE_ACCOUNT_LOCK_FAILURES: '6',
  IDENTITY_THROTTLE_ADDRESS_LOCK_FAILURES: '8',
  IDENTITY_THROTTLE_LOCK_S: '60',
};
