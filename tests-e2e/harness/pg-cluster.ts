/**
 * A private PostgreSQL cluster (initdb in a temp folder, fsync on, default durability) for the fault
 * test that restarts PostgreSQL: restarting the machine's shared server would disturb everything else.
 * initdb refuses to run as root, so when root it runs as the `postgres` system user.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './proc';

function pgBin(name: string): string {
  const fromEnv = process.env['PG_BIN_DIR'];
  if (fromEnv) return join(fromEnv, name);
  const out = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'], { encoding: 'utf8' });
  return join(out.trim(), name);
}

export class PrivatePostgres {
  private dir = '';
  port = 0;
  private asUser: string[] = [];

  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  private run(bin: string, args: string[]): string {
    const cmd = [pgBin(bin), ...args];
    const [file, ...rest] = this.asUser.length ? ['runuser', ...this.asUser, '--', ...cmd] : cmd;
    return execFileSync(file!, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async init(): Promise<void> {
    this.port = await freePort();
    this.dir = mkdtempSync(join(tmpdir(), 'hubbub-pg-'));
    if (process.getuid?.() === 0) {
      const pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const pgGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(this.dir, pgUid, pgGid);
      this.asUser = ['-u', 'postgres'];
    }
    this.run('initdb', [
      '-D',
      join(this.dir, 'data'),
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-instructions',
    ]);
    await this.start();
  }

  async start(): Promise<void> {
    this.run('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200`,
      'start',
    ]);
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', mode, '-w', 'stop']);
  }

  createDatabase(name: string): string {
    this.run('psql', ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-qc', `CREATE DATABASE ${name}`]);
    return this.url(name);
  }

  async destroy(): Promise<void> {
    try {
      statSync(join(this.dir, 'data', 'postmaster.pid'));
      await this.stop('immediate');
    } catch {
      /* not running */
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
