/**
 * KV helpers for leases and claims: `claim` is an atomic create (first writer wins), `renew`
 * refreshes a held key only if nobody else changed it (compare-and-set on the revision), `release`
 * deletes only our own revision. Entries expire with the bucket's TTL unless renewed.
 */
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';

export type { KV };

export async function openKv(nc: NatsConnection, bucket: string, ttlMs: number): Promise<KV> {
  const kvm = new Kvm(nc);
  return kvm.create(bucket, { ttl: ttlMs, history: 1 });
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
