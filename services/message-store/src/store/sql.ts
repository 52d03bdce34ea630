/**
 * The hot path talks SQL with `$n` parameters straight to the driver: a dedicated `pg.Pool` on PostgreSQL,
 * or the single PGlite connection behind knex (whose query builder and `?` bindings are not used here).
 * Migrations stay in knex (store/migrations.ts).
 */
import { Pool } from 'pg';
import type { PoolClient } from 'pg';
import type { Db } from '@hubbub/db';
import type { Logger } from '@hubbub/runtime';

export interface Queryable {
  /** `name` makes it a prepared statement (parsed and planned once per connection): hot-path queries only. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], name?: string): Promise<R[]>;
}

export interface Sql extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /**
   * Statements whose loss in a crash is harmless (deleting published outbox rows: the sweep publishes them
   * again, consumers dedupe by id): committed without waiting for the WAL flush (synchronous_commit off on
   * a connection of their own), so they cost no fsync and never delay a post's commit.
   */
  readonly lazy: Queryable;
  /**
   * The post path on connections of its own (as many as batches may commit at once, plus one): the batch INSERT and
   * the channel facts a post is checked against (the channel cache's loads). Reads, however many or slow (polling
   * clients, a search until statement_timeout), never hold every connection a post needs.
   */
  readonly posts: Queryable;
  /** Runs `fn` in one transaction (committed when it resolves, rolled back when it throws). */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `query` of a pg.Pool or PoolClient: `name` makes it a prepared statement. */
function queryOn(c: Pick<Pool, 'query'> | PoolClient): Queryable['query'] {
  return async <R>(text: string, params?: readonly unknown[], name?: string) =>
    (await c.query(name ? { name, text, values: params as unknown[] } : { text, values: params as unknown[] }))
      .rows as R[];
}

/**
 * Three pools: reads and other writes (`poolMax`), the post path (`postPoolMax`), and one connection for lazy
 * deletes. `statementTimeoutMs` (0 = none) bounds every statement on all of them: a query the client gave up on (a
 * search over a huge channel, a lock wait) is cancelled by PostgreSQL instead of holding a backend and its CPU.
 */
export function pgSql(url: string, poolMax: number, log: Logger, statementTimeoutMs = 0, postPoolMax = 5): Sql {
  const timeout = statementTimeoutMs > 0 ? `-c statement_timeout=${statementTimeoutMs}` : '';
  const open = (name: string, max: number, options: string): Pool => {
    const p = new Pool({ connectionString: url, max, application_name: name, ...(options ? { options } : {}) });
    p.on('error', (err) => log.warn({ err, code: 'DB_CONN_ERROR' }, 'database connection error'));
    return p;
  };
  const pool = open('message-store', poolMax, timeout);
  const lazyPool = open('message-store-lazy', 1, `-c synchronous_commit=off ${timeout}`.trim());
  const postPool = open('message-store-posts', postPoolMax, timeout);
  return {
    kind: 'postgres',
    posts: { query: queryOn(postPool) },
    lazy: { query: queryOn(lazyPool) },
    query: queryOn(pool),
    tx: async <T>(fn: (q: Queryable) => Promise<T>): Promise<T> => {
      const c: PoolClient = await pool.connect();
      try {
        await c.query('BEGIN');
        const out = await fn({ query: queryOn(c) });
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    },
    close: async () => {
      await Promise.all([pool.end(), lazyPool.end(), postPool.end()]);
    },
  };
}

interface PgliteLike {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  transaction<T>(
    fn: (tx: { query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }> }) => Promise<T>,
  ): Promise<T>;
}

/** Uses the PGlite instance of a knex-pglite Db (after migrations; knex is not used again). */
export async function pgliteSql(db: Db): Promise<Sql> {
  const client = (
    db.knex as unknown as {
      client: { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void> };
    }
  ).client;
  const conn = await client.acquireConnection();
  const pg = conn as PgliteLike;
  const query = async <R>(text: string, params?: readonly unknown[]): Promise<R[]> =>
    (await pg.query<R>(text, params as unknown[])).rows;
  return {
    kind: 'pglite',
    query,
    lazy: { query },
    posts: { query },
    tx: <T>(fn: (q: Queryable) => Promise<T>) =>
      pg.transaction((t) =>
        fn({
          query: async <R>(text: string, params?: readonly unknown[]) =>
            (await t.query<R>(text, params as unknown[])).rows,
        }),
      ),
    close: async () => {
      await client.releaseConnection(conn);
      await db.close();
    },
  };
}

/** SQLSTATE of a unique index refusing a row. */
export const UNIQUE_VIOLATION = '23505';

/** PostgreSQL error code of a driver error (e.g. 23505 unique_violation). */
export function pgCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}
