export { DEFAULT_POOL_MAX, createDb } from './create-db';
export type { Db, DbOptions, Knex } from './create-db';
export { runMigrations } from './migrations';
export { dbError } from './errors';
export type { Migration } from './migrations';
