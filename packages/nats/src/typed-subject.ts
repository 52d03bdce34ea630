/**
 * Typed publish/subscribe with proto3-JSON payloads, so `nats sub 'hubbub.>'` shows readable
 * events. The codec is the ts-proto message's own `toJSON`/`fromJSON`.
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';

export interface JsonCodec<T> {
  toJSON(m: T): unknown;
  fromJSON(o: unknown): T;
}

const enc = new TextEncoder();

export function encodeJson<T>(codec: JsonCodec<T>, m: T): Uint8Array {
  return enc.encode(JSON.stringify(codec.toJSON(m)));
}

export function decodeJson<T>(codec: JsonCodec<T>, data: Uint8Array): T {
  return codec.fromJSON(JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')));
}

export function publishJson<T>(nc: NatsConnection, subject: string, codec: JsonCodec<T>, m: T): void {
  nc.publish(subject, encodeJson(codec, m));
}

/**
 * Subscribes and calls `handler` for each decodable message; undecodable payloads are counted and
 * skipped (a bad publisher must not stop a consumer).
 */
export function subscribeJson<T>(
  nc: NatsConnection,
  subject: string,
  codec: JsonCodec<T>,
  handler: (m: T, subject: string) => void,
  onBad?: (subject: string, err: unknown) => void,
  queue?: string,
): Subscription {
  return nc.subscribe(subject, {
    ...(queue ? { queue } : {}),
    callback: (err, msg) => {
      if (err) return;
      let m: T;
      try {
        m = decodeJson(codec, msg.data);
      } catch (e) {
        onBad?.(msg.subject, e);
        return;
      }
      handler(m, msg.subject);
    },
  });
}
