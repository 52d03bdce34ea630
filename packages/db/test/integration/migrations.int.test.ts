import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@hubbub/runtime';
import { createTestDatabase } from '@hubbub/testing';
import type { Knex, Migration } from '../../src/index';
import { createDb, runMigrations } from '../../src/index';

const log = createLogger({ service: 'db-test', level: 'silent' });

// One migration using the features our services rely on: identity columns, jsonb, a generated
// tsvector column with a GIN index, partial unique index, ON CONFLICT.
const migrations: Migration[] = [
  {
    name: '0001_notes',
    async up(k: Knex) {
      await k.schema.createTable('notes', (t) => {
        t.bigIncrements('id');
        t.text('author').notNullable();
        t.text('client_key');
        t.text('body').notNullable();
        t.jsonb('meta').notNullable().defaultTo('{}');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(k.fn.now());
      });
      await k.raw(`ALTER TABLE notes ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED`);
      await k.raw('CREATE INDEX notes_tsv ON notes USING gin (tsv)');
      await k.raw('CREATE UNIQUE INDEX notes_idem ON notes (author, client_key) WHERE client_key IS NOT NULL');
    },
  },
];

async function exercise(knex: Knex): Promise<void> {
  expect(await runMigrations(knex, migrations)).toEqual(['0001_notes']);
  expect(await runMigrations(knex, migrations)).toEqual([]); // idempotent
  await knex('notes').insert({ author: 'a', client_key: 'k1', body: 'hello brave world', meta: { x: 1 } });
  await knex('notes')
    .insert({ author: 'a', client_key: 'k1', body: 'duplicate' })
    .onConflict(knex.raw('(author, client_key) WHERE client_key IS NOT NULL'))
    .ignore();
  const rows = await knex('notes').select('body', 'meta');
  expect(rows).toEqual([{ body: 'hello brave world', meta: { x: 1 } }]);
  const hits = await knex('notes').whereRaw(`tsv @@ plainto_tsquery('simple', ?)`, ['brave']).count({ n: '*' });
  expect(Number(hits[0]!['n'])).toBe(1);
}

describe('createDb + runMigrations', () => {
  it('runs the same migration on PostgreSQL', async () => {
    const tdb = await createTestDatabase();
    const db = createDb({ databaseUrl: tdb.url, log });
    try {
      expect(db.kind).toBe('postgres');
      await exercise(db.knex);
    } finally {
      await db.close();
      await tdb.drop();
    }
  });

  it('runs the same migration on embedded PGlite (on disk)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubbub-pglite-'));
    const db = createDb({ dataDir: join(dir, 'pg'), log });
    try {
      expect(db.kind).toBe('pglite');
      await exercise(db.knex);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
