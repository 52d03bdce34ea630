/**
 * A fresh PostgreSQL database per test file: created on the server of `DATABASE_URL` and dropped
 * afterwards, or, when no URL is set and a Docker engine answers, in a Testcontainers PostgreSQL.
 * With neither, it fails loudly (never skips).
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}

export async function createTestDatabase(env: Record<string, string | undefined> = process.env): Promise<TestDatabase> {
  const name = 'hubbub_t_' + randomBytes(6).toString('hex');
  const base = env['DATABASE_URL'];
  if (base) {
    const admin = new Client({ connectionString: base });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    return {
      url: withDatabase(base, name),
      name,
      drop: async () => {
        const c = new Client({ connectionString: base });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } finally {
          await c.end();
        }
      },
    };
  }
  let container;
  try {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    container = await new PostgreSqlContainer('postgres:15-alpine').withDatabase(name).start();
  } catch (e) {
    throw new Error(
      'No PostgreSQL for tests: set DATABASE_URL (./scripts/test does this when PostgreSQL answers on ' +
        `127.0.0.1:5432) or run a Docker engine for Testcontainers. Cause: ${String(e)}`,
    );
  }
  const started = container;
  return { url: started.getConnectionUri(), name, drop: async () => void (await started.stop()) };
}

/** Lists databases created by createTestDatabase that still exist (leak check). */
export async function listTestDatabases(url: string): Promise<string[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'hubbub_t_%'");
    return r.rows.map((x) => x.datname);
  } finally {
    await c.end();
  }
}

/** Runs one statement on a database with a short-lived connection (tests that change state behind a service). */
export async function queryDatabase(
  url: string,
  text: string,
  params: readonly unknown[] = [],
): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params as unknown[])).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}
