/**
 * identity's schema. Names compare by `username_fold` (unique, never freed: deleted accounts keep
 * their row as a tombstone). Secrets are stored only as hashes.
 */
import type { Knex, Migration } from '@hubbub/db';

export const MIGRATIONS: readonly Migration[] = [
  {
    name: '0001_identity',
    async up(knex: Knex) {
      await knex.raw(`
        CREATE TABLE users (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          username text NOT NULL,
          username_fold text NOT NULL UNIQUE,
          display_name text NOT NULL DEFAULT '',
          email text,
          bio text NOT NULL DEFAULT '',
          avatar text NOT NULL DEFAULT '',
          role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'sysop', 'guest')),
          is_bot boolean NOT NULL DEFAULT false,
          password_hash text,
          ban_reason text,
          ban_until timestamptz,
          ban_by text,
          banned_at timestamptz,
          preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          last_login_at timestamptz,
          last_login_address text,
          last_login_protocol text
        )`);
      await knex.raw('CREATE INDEX users_updated_idx ON users (updated_at, id)');
      await knex.raw(`
        CREATE TABLE sessions (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          token_hash bytea NOT NULL UNIQUE,
          user_id bigint NOT NULL REFERENCES users(id),
          scopes text[] NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          revoked_at timestamptz,
          client_address text
        )`);
      await knex.raw('CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL');
      await knex.raw(`
        CREATE TABLE ssh_keys (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES users(id),
          algorithm text NOT NULL,
          fingerprint text NOT NULL UNIQUE,
          key_blob bytea NOT NULL,
          bits integer NOT NULL DEFAULT 0,
          comment text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          last_used_at timestamptz
        )`);
      await knex.raw('CREATE INDEX ssh_keys_user_idx ON ssh_keys (user_id)');
      await knex.raw(`
        CREATE TABLE app_passwords (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES users(id),
          name text NOT NULL,
          scopes text[] NOT NULL,
          secret_hash text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          last_used_at timestamptz,
          UNIQUE (user_id, name)
        )`);
      await knex.raw(`
        CREATE TABLE client_certificates (
          fingerprint text PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES users(id),
          name text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now()
        )`);
      await knex.raw('CREATE INDEX client_certificates_user_idx ON client_certificates (user_id)');
      await knex.raw(`
        CREATE TABLE e2e_keys (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES users(id),
          fingerprint text NOT NULL UNIQUE,
          bundle bytea NOT NULL,
          ed25519 bytea NOT NULL,
          x25519 bytea NOT NULL,
          bundle_created_at timestamptz NOT NULL,
          published_at timestamptz NOT NULL DEFAULT now(),
          is_current boolean NOT NULL DEFAULT true,
          revoked_at timestamptz
        )`);
      await knex.raw('CREATE UNIQUE INDEX e2e_keys_current_idx ON e2e_keys (user_id) WHERE is_current');
      await knex.raw(`
        CREATE TABLE address_bans (
          cidr text PRIMARY KEY,
          reason text NOT NULL DEFAULT '',
          until timestamptz,
          banned_by text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now()
        )`);
    },
  },
  {
    name: '0002_login_failures',
    async up(knex) {
      // The throttles' failure counters, shared by every instance (store/login-failures.ts); epoch ms.
      await knex.raw(`
        CREATE TABLE login_failures (
          key text COLLATE "C" PRIMARY KEY,
          failures integer NOT NULL,
          first_fail_at bigint NOT NULL,
          last_fail_at bigint NOT NULL,
          locked_until bigint NOT NULL DEFAULT 0
        )`);
      await knex.raw('CREATE INDEX login_failures_last_fail_idx ON login_failures (last_fail_at)');
    },
    async down(knex) {
      await knex.raw('DROP TABLE login_failures');
    },
  },
  {
    name: '0003_session_indexes',
    async up(knex) {
      // A locked account's known addresses read its sessions by user and creation time, revoked ones included (the
      // partial user index skips those): without this, one seq scan of all sessions per locked account a minute.
      await knex.raw('CREATE INDEX sessions_user_created_idx ON sessions (user_id, created_at)');
      // The periodic prune of sessions that ended long ago (IdentityApp.pruneSessions).
      await knex.raw('CREATE INDEX sessions_expires_idx ON sessions (expires_at)');
      await knex.raw('CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL');
    },
    async down(knex) {
      for (const i of ['sessions_user_created_idx', 'sessions_expires_idx', 'sessions_revoked_idx'])
        await knex.raw(`DROP INDEX ${i}`);
    },
  },
];
