/**
 * knex factory: PostgreSQL (`pg`) when a URL is given, otherwise an embedded PGlite database under
 * the service's data folder (ARCHITECTURE.md "Storage"). The same migrations and queries run on
 * both; PGlite has exactly one connection, so callers must not hold a transaction while awaiting
 * another query on the same knex outside it.
 */
import { mkdirSync } from 'node:fs';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import type { Logger } from '@hubbub/runtime';

export type { Knex };

export interface DbOptions {
  /** PostgreSQL connection string; when absent PGlite is used. */
  readonly databaseUrl?: string | undefined;
  /** Folder for PGlite data; `undefined` with no URL means in-memory (tests). */
  readonly dataDir?: string | undefined;
  readonly log: Logger;
  /** Max pool size for PostgreSQL. */
  readonly poolMax?: number;
  readonly applicationName?: string;
  /**
   * PostgreSQL `statement_timeout` of every connection (0 or absent: none): a statement its caller gave up on is
   * cancelled instead of holding a backend. Migrations lift it for their own transaction (runMigrations).
   */
  readonly statementTimeoutMs?: number;
}

export interface Db {
  readonly knex: Knex;
  readonly kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

export const DEFAULT_POOL_MAX = 10;

export function createDb(o: DbOptions): Db {
  if (o.databaseUrl) {
    const knex = knexFactory({
      client: 'pg',
      connection: {
        connectionString: o.databaseUrl,
        application_name: o.applicationName ?? 'hubbub',
        ...(o.statementTimeoutMs ? { options: `-c statement_timeout=${Math.floor(o.statementTimeoutMs)}` } : {}),
      },
      pool: {
        min: 0,
        max: o.poolMax ?? DEFAULT_POOL_MAX,
        afterCreate: (conn: { on: (ev: string, fn: (e: unknown) => void) => void }, done: (e?: Error) => void) => {
          // A server restart kills idle connections; log and let the pool replace them.
          conn.on('error', (err) => o.log.warn({ err, code: 'DB_CONN_ERROR' }, 'database connection error'));
          done();
        },
      },
      acquireConnectionTimeout: 10_000,
    });
    return { knex, kind: 'postgres', close: () => knex.destroy() };
  }
  if (o.dataDir) mkdirSync(o.dataDir, { recursive: true });
  const knex = knexFactory({
    client: ClientPgLite,
    dialect: 'postgres',
    connection: o.dataDir ? { filename: o.dataDir } : {},
  } as Knex.Config);
  o.log.info({ dataDir: o.dataDir ?? ':memory:' }, 'using embedded PGlite database');
  return { knex, kind: 'pglite', close: () => knex.destroy() };
}
