/**
 * Migrations as code: each service lists its migrations in order (no directory scanning, so the
 * same list works from src under jest and from dist in production). Run at start-up.
 */
import type { Knex } from 'knex';

export interface Migration {
  readonly name: string;
  up(knex: Knex): Promise<void>;
  down?(knex: Knex): Promise<void>;
}

class ListSource implements Knex.MigrationSource<Migration> {
  constructor(private readonly list: readonly Migration[]) {}
  getMigrations(): Promise<Migration[]> {
    return Promise.resolve([...this.list]);
  }
  getMigrationName(m: Migration): string {
    return m.name;
  }
  getMigration(m: Migration): Promise<Knex.Migration> {
    // Each runs in a transaction of its own: a service's statement_timeout (createDb) must not cut a long migration
    // (an index built over a big table) short.
    const untimed = async (k: Knex, step: (k: Knex) => Promise<void>): Promise<void> => {
      await k.raw('SET LOCAL statement_timeout = 0');
      await step(k);
    };
    return Promise.resolve({
      up: (k: Knex) => untimed(k, (t) => m.up(t)),
      down: (k: Knex) => untimed(k, (t) => (m.down ? m.down(t) : Promise.resolve())),
    });
  }
}

/** Applies pending migrations; returns the names applied. */
export async function runMigrations(
  knex: Knex,
  list: readonly Migration[],
  tableName = 'knex_migrations',
): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest({
    migrationSource: new ListSource(list),
    tableName,
  })) as [number, string[]];
  return applied;
}
