/**
 * Registration with the NATS services framework (ADR-32), so `nats micro ls|info|stats` lists every
 * hubbub service instance. Endpoints are optional; the registration itself answers PING/INFO/STATS.
 */
import { Svcm } from '@nats-io/services';
import type { Service } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/nats-core';

export type { Service };

export async function registerNatsService(
  nc: NatsConnection,
  o: { name: string; version: string; description: string; metadata?: Record<string, string> },
): Promise<Service> {
  const svcm = new Svcm(nc as never);
  return svcm.add({
    name: o.name,
    version: o.version,
    description: o.description,
    ...(o.metadata ? { metadata: o.metadata } : {}),
  });
}
