/** Loads the golden vectors of this folder, turning u64 strings ("0x…" or decimal) into bigints. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientFrame, ServerFrame } from '../../src/protocol/events';

const U64_KEYS = new Set(['id', 'before', 'after']);

function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = U64_KEYS.has(k) && typeof x === 'string' ? BigInt(x) : revive(x);
    return out;
  }
  return v;
}

function load<T>(file: string): T[] {
  const raw = JSON.parse(readFileSync(join(__dirname, file), 'utf8')) as { vectors: unknown[] };
  return raw.vectors.map(revive) as T[];
}

export interface ClientVector {
  name: string;
  hex: string;
  frames: ClientFrame[];
}
export interface ServerVector {
  name: string;
  hex: string;
  frame: ServerFrame;
}
export interface ErrorVector {
  name: string;
  direction: 'c2s' | 's2c';
  hex: string;
  failAt: number;
  code: string;
  wireCode: string;
  framesBefore?: number;
}

export const clientVectors = (): ClientVector[] => load<ClientVector>('client-frames.json');
export const serverVectors = (): ServerVector[] => load<ServerVector>('server-frames.json');
export const errorVectors = (): ErrorVector[] => load<ErrorVector>('errors.json');
