import { createServer } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Client } from 'pg';
import {
  closeServer,
  createTestDatabase,
  createTestNats,
  leakedHandles,
  listStreamsWithPrefix,
  listTestDatabases,
  listenEphemeral,
  snapshotHandles,
} from '../../src/index';

describe('@hubbub/testing leaves nothing behind', () => {
  it('creates a usable database and drops it', async () => {
    const tdb = await createTestDatabase();
    const c = new Client({ connectionString: tdb.url });
    await c.connect();
    await c.query('CREATE TABLE t (x int)');
    await c.end();
    expect(await listTestDatabases(process.env['DATABASE_URL']!)).toContain(tdb.name);
    await tdb.drop();
    expect(await listTestDatabases(process.env['DATABASE_URL']!)).not.toContain(tdb.name);
  });

  it('gives each test file its own NATS prefix and removes its buckets', async () => {
    const a = createTestNats();
    const b = createTestNats();
    expect(a.prefix).not.toBe(b.prefix);
    const nc = await connect({ servers: a.url });
    const kv = await new Kvm(nc).create(`${a.prefix}_presence`, { ttl: 10_000 });
    await kv.put('x', 'y');
    await nc.close();
    expect(await listStreamsWithPrefix(a.url, a.prefix)).toEqual([`KV_${a.prefix}_presence`]);
    await a.cleanup();
    await b.cleanup();
    expect(await listStreamsWithPrefix(a.url, a.prefix)).toEqual([]);
  });

  it('detects an open server and sees it released after close', async () => {
    const snap = snapshotHandles();
    const server = createServer();
    const port = await listenEphemeral(server);
    expect(port).toBeGreaterThan(0);
    // Only the server is asserted here: timers of earlier tests in this worker may still be settling.
    expect((await leakedHandles(snap, 50))['TCPServerWrap']).toBe(1);
    await closeServer(server);
    expect(await leakedHandles(snap)).toEqual({});
  });
});
