/**
 * KV helpers for leases and claims: `claim` is an atomic create (first writer wins), `renew`
 * refreshes a held key only if nobody else changed it (compare-and-set on the revision), `release`
 * deletes only our own revision. Entries expire with the bucket's TTL unless renewed.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { nanos } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';

export type { KV };

/**
 * Opens (creating if missing) a KV bucket whose entries live `ttlMs`. An existing bucket created with another
 * TTL (an older release) is updated to this one, since `Kvm.create` would silently keep the old value.
 */
export async function openKv(nc: NatsConnection, bucket: string, ttlMs: number): Promise<KV> {
  const kv = await new Kvm(nc).create(bucket, { ttl: ttlMs, history: 1 });
  if ((await kv.status()).ttl !== ttlMs) {
    const jsm = await jetstreamManager(nc);
    const name = `KV_${bucket}`;
    const info = await jsm.streams.info(name);
    const maxAge = nanos(ttlMs);
    // The duplicates window may not exceed the max age (KV buckets use the TTL for both when it is short).
    const dup = Math.min(info.config.duplicate_window ?? maxAge, maxAge);
    await jsm.streams.update(name, { ...info.config, max_age: maxAge, duplicate_window: dup });
  }
  return kv;
}

/** Atomically creates `key`; returns its revision, or undefined when someone holds it. */
export async function claim(kv: KV, key: string, value: string): Promise<number | undefined> {
  try {
    return await kv.create(key, value);
  } catch (e) {
    if (isWrongLastSequence(e)) return undefined;
    throw e;
  }
}

/** Refreshes a held key (resets its age). Returns the new revision, or undefined when lost. */
export async function renew(kv: KV, key: string, value: string, revision: number): Promise<number | undefined> {
  try {
    return await kv.update(key, value, revision);
  } catch (e) {
    if (isWrongLastSequence(e)) return undefined;
    throw e;
  }
}

/** Deletes a key only if we still hold `revision`. */
export async function release(kv: KV, key: string, revision: number): Promise<boolean> {
  try {
    await kv.delete(key, { previousSeq: revision });
    return true;
  } catch (e) {
    if (isWrongLastSequence(e)) return false;
    throw e;
  }
}

function isWrongLastSequence(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /wrong last sequence|key exists|10071/i.test(msg);
}
