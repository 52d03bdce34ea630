#!/usr/bin/env node
/*
 * scripts/up's process supervisor: starts NATS (unless NATS_URL is set) and every built service in
 * dependency order, prefixes their output, waits for each one's `"msg":"ready"` log line, prints one
 * line per ready service, and on SIGINT/SIGTERM stops them in reverse order (SIGTERM, then SIGKILL
 * after a grace period). Plain JS so it runs before anything is built.
 */
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const { existsSync, mkdirSync } = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const env = { ...process.env };
const GRACE_MS = 12_000;
const READY_TIMEOUT_MS = 60_000;

// Order matters: data owners first, doors after. `db` names the per-service database.
const SERVICES = [
  { name: 'identity', db: 'hubbub_identity', port: () => `gRPC ${env.IDENTITY_PORT || 50051}` },
  { name: 'message-store', db: 'hubbub_messages', port: () => `gRPC ${env.MESSAGE_STORE_PORT || 50052}` },
  { name: 'irc-binary', port: () => `TCP ${env.IRCB_PORT || 6667}` },
  {
    name: 'ws-messenger',
    port: () => `HTTP ${env.WSM_PORT || 8080} (ws /ws, browser /), ops ${env.WSM_METRICS_PORT || 9454}`,
  },
];

const COLORS = [36, 33, 35, 32, 34, 31];
const children = [];
let stopping = false;

function say(msg) {
  process.stdout.write(`\x1b[1m[up]\x1b[0m ${msg}\n`);
}

function prefixer(name, color, onLine) {
  let buf = '';
  const tag = `\x1b[${color}m${name.padEnd(13)}|\x1b[0m `;
  return (chunk) => {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      process.stdout.write(tag + line + '\n');
      onLine(line);
    }
  };
}

function start(name, cmd, args, childEnv, color, readyTest) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry = { name, child, exited: false };
    children.push(entry);
    let ready = false;
    const timer = setTimeout(() => {
      if (!ready) reject(new Error(`${name} did not report ready within ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    const onLine = (line) => {
      if (!ready && readyTest(line)) {
        ready = true;
        clearTimeout(timer);
        resolve(entry);
      }
    };
    child.stdout.on('data', prefixer(name, color, onLine));
    child.stderr.on('data', prefixer(name, color, onLine));
    child.on('exit', (code, sig) => {
      entry.exited = true;
      clearTimeout(timer);
      if (!ready) reject(new Error(`${name} exited before it was ready (code ${code}, signal ${sig})`));
      else if (!stopping) {
        say(`${name} exited unexpectedly (code ${code}, signal ${sig}); stopping everything`);
        void shutdown(1);
      }
    });
  });
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startNats() {
  if (env.NATS_URL) {
    say(`using NATS at ${env.NATS_URL}`);
    return;
  }
  const bin = env.HUBBUB_NATS_BIN || 'nats-server';
  const port = (await portFree(4222)) ? 4222 : await freePort();
  const dataDir = path.join(root, '.data/nats');
  mkdirSync(dataDir, { recursive: true });
  await start('nats', bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dataDir], env, 90, (l) =>
    /Server is ready/.test(l),
  );
  env.NATS_URL = `nats://127.0.0.1:${port}`;
  say(`nats ready on ${env.NATS_URL} (JetStream, data in .data/nats)`);
}

function databaseUrlFor(svc) {
  const own = env[`${svc.name.toUpperCase().replace(/-/g, '_')}_DATABASE_URL`];
  if (own) return own;
  if (!env.DATABASE_URL) return undefined;
  const u = new URL(env.DATABASE_URL);
  const admin = u.toString();
  u.pathname = '/' + svc.db;
  try {
    // Create the service's own database when missing (psql from PostgreSQL's client tools).
    const exists = execFileSync('psql', [admin, '-tAc', `SELECT 1 FROM pg_database WHERE datname='${svc.db}'`], {
      encoding: 'utf8',
    }).trim();
    if (exists !== '1') execFileSync('psql', [admin, '-qc', `CREATE DATABASE ${svc.db}`]);
  } catch (e) {
    say(`could not ensure database ${svc.db}: ${e.message}`);
  }
  return u.toString();
}

async function main() {
  await startNats();
  let color = 0;
  for (const svc of SERVICES) {
    const main = path.join(root, 'services', svc.name, 'dist/src/main.js');
    if (!existsSync(main)) continue;
    const childEnv = {
      ...env,
      DATA_DIR: env.DATA_DIR ? path.join(env.DATA_DIR, svc.name) : path.join(root, '.data', svc.name),
    };
    if (svc.db) {
      const url = databaseUrlFor(svc);
      if (url) childEnv.DATABASE_URL = url;
      else delete childEnv.DATABASE_URL;
    }
    await start(svc.name, process.execPath, [main], childEnv, COLORS[color++ % COLORS.length], (l) =>
      /"msg":"ready"/.test(l),
    );
    say(
      `${svc.name} ready on ${svc.port()}${svc.db ? (childEnv.DATABASE_URL ? ' (PostgreSQL)' : ' (embedded PGlite)') : ''}`,
    );
  }
  say('all services ready; Ctrl-C stops them');
}

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say('stopping…');
  for (const entry of [...children].reverse()) {
    if (entry.exited) continue;
    entry.child.kill('SIGTERM');
    const done = await Promise.race([
      new Promise((r) => entry.child.once('exit', () => r(true))),
      new Promise((r) => setTimeout(() => r(false), GRACE_MS)),
    ]);
    if (!done) {
      say(`${entry.name} did not stop in ${GRACE_MS} ms; killing it`);
      entry.child.kill('SIGKILL');
    } else say(`${entry.name} stopped`);
  }
  say('stopped');
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
main().catch((e) => {
  say(`failed: ${e.message}`);
  void shutdown(1);
});
