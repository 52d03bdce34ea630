/**
 * Pure, typed configuration from environment variables (HOUSE-STYLE §3.6).
 *
 * Rules: every key names its env variable, default and validation here; `loadConfig` never reads
 * `process.env` itself (only a service's main.ts passes it in); every problem is collected and
 * reported at once; unknown variables carrying the service's own prefix are rejected; secrets may
 * come from `<NAME>_FILE`.
 */
import { readFileSync } from 'node:fs';

export type Env = Readonly<Record<string, string | undefined>>;

interface FieldBase<T> {
  readonly env: string;
  readonly doc: string;
  readonly secret?: boolean;
  /** Parses a raw string; returns the value or an error text. */
  readonly parse: (raw: string) => { ok: true; value: T } | { ok: false; error: string };
}
export interface RequiredField<T> extends FieldBase<T> {
  readonly kind: 'required';
  readonly default?: T;
}
export interface OptionalField<T> extends FieldBase<T> {
  readonly kind: 'optional';
}
export type Field<T> = RequiredField<T> | OptionalField<T>;
export type Schema = Readonly<Record<string, Field<unknown>>>;
export type ConfigOf<S extends Schema> = {
  readonly [K in keyof S]: S[K] extends OptionalField<infer T>
    ? T | undefined
    : S[K] extends RequiredField<infer T>
      ? T
      : never;
};

interface FieldOptions<T> {
  env: string;
  doc: string;
  default?: T;
  secret?: boolean;
}

function field<T>(
  o: FieldOptions<T>,
  parse: FieldBase<T>['parse'],
): RequiredField<T> & { optional: () => OptionalField<T> } {
  const base = {
    kind: 'required' as const,
    env: o.env,
    doc: o.doc,
    parse,
    ...(o.secret === undefined ? {} : { secret: o.secret }),
    ...(o.default === undefined ? {} : { default: o.default }),
  };
  return {
    ...base,
    optional: (): OptionalField<T> => ({
      kind: 'optional',
      env: o.env,
      doc: o.doc,
      parse,
      ...(o.secret === undefined ? {} : { secret: o.secret }),
    }),
  };
}

/**
 * A string field; `pattern` restricts it, then `check` (an error text, or undefined when the value is good). The
 * texts of a secret field must not quote its value.
 */
export function str(
  o: FieldOptions<string> & { pattern?: RegExp; minLength?: number; check?: (raw: string) => string | undefined },
) {
  return field(o, (raw) => {
    if (o.minLength !== undefined && raw.length < o.minLength)
      return { ok: false, error: `must be at least ${o.minLength} characters` };
    if (o.pattern && !o.pattern.test(raw)) return { ok: false, error: `must match ${String(o.pattern)}` };
    const error = o.check?.(raw);
    if (error !== undefined) return { ok: false, error };
    return { ok: true, value: raw };
  });
}

/** An integer field with inclusive bounds. */
export function int(o: FieldOptions<number> & { min?: number; max?: number }) {
  return field(o, (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) return { ok: false, error: `must be an integer, got "${raw}"` };
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) return { ok: false, error: 'is out of range' };
    if (o.min !== undefined && n < o.min) return { ok: false, error: `must be >= ${o.min}` };
    if (o.max !== undefined && n > o.max) return { ok: false, error: `must be <= ${o.max}` };
    return { ok: true, value: n };
  });
}

/** A boolean field: 1/0, true/false, yes/no, on/off. */
export function bool(o: FieldOptions<boolean>) {
  return field(o, (raw) => {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return { ok: true, value: true };
    if (['0', 'false', 'no', 'off'].includes(v)) return { ok: true, value: false };
    return { ok: false, error: `must be a boolean (true/false), got "${raw}"` };
  });
}

/** One of a fixed set of strings. */
export function oneOf<const V extends string>(o: FieldOptions<V> & { values: readonly V[] }) {
  return field<V>(o, (raw) =>
    (o.values as readonly string[]).includes(raw)
      ? { ok: true, value: raw as V }
      : { ok: false, error: `must be one of ${o.values.join(', ')}, got "${raw}"` },
  );
}

/** A comma-separated list of strings (empty items dropped). */
export function list(o: FieldOptions<readonly string[]> & { item?: RegExp }) {
  return field<readonly string[]>(o, (raw) => {
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    const bad = o.item ? items.filter((s) => !o.item!.test(s)) : [];
    if (bad.length > 0) return { ok: false, error: `has invalid items: ${bad.join(', ')}` };
    return { ok: true, value: items };
  });
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/**
 * Platform-wide names that carry a service's prefix but belong to everyone (every door reads
 * `IDENTITY_ADDR`; scripts/up reads `<SVC>_DATABASE_URL`). The strict-prefix check never rejects them.
 */
export const SHARED_ENV_NAMES: ReadonlySet<string> = new Set([
  'IDENTITY_ADDR',
  'MESSAGE_STORE_ADDR',
  'IDENTITY_DATABASE_URL',
  'MESSAGE_STORE_DATABASE_URL',
  'MESSAGE_STORE_POST_TRANSPORT',
]);

export interface LoadOptions {
  /** Variables starting with this prefix that the schema does not know are errors (e.g. `IRCB_`). */
  readonly strictPrefix?: string;
  /** Cross-field checks; each returns problems. */
  readonly checks?: ReadonlyArray<(cfg: Record<string, unknown>) => readonly string[]>;
  /** Reads `*_FILE` secrets; injectable for tests. */
  readonly readFile?: (path: string) => string;
}

/**
 * Validates `env` against `schema` and returns a frozen, typed config, or throws a ConfigError that
 * lists every problem.
 */
export function loadConfig<S extends Schema>(schema: S, env: Env, options: LoadOptions = {}): ConfigOf<S> {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  const known = new Set<string>();
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8').trim());
  for (const [key, f] of Object.entries(schema)) {
    known.add(f.env);
    if (f.secret) known.add(f.env + '_FILE');
    let raw = env[f.env];
    const filePath = f.secret ? env[f.env + '_FILE'] : undefined;
    if (raw !== undefined && filePath !== undefined) {
      problems.push(`${f.env} and ${f.env}_FILE are both set; use one`);
      continue;
    }
    if (filePath !== undefined) {
      try {
        raw = readFile(filePath);
      } catch {
        problems.push(`${f.env}_FILE: cannot read ${filePath}`);
        continue;
      }
    }
    if (raw === undefined || raw === '') {
      if (f.kind === 'optional') out[key] = undefined;
      else if (f.default !== undefined) out[key] = f.default;
      else problems.push(`${f.env} is required (${f.doc})`);
      continue;
    }
    const r = f.parse(raw);
    if (r.ok) out[key] = r.value;
    else problems.push(`${f.env} ${r.error}`);
  }
  if (options.strictPrefix) {
    for (const name of Object.keys(env)) {
      if (name.startsWith(options.strictPrefix) && !known.has(name) && !SHARED_ENV_NAMES.has(name))
        problems.push(`${name} is not a known setting`);
    }
  }
  if (problems.length === 0) for (const check of options.checks ?? []) problems.push(...check(out));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as ConfigOf<S>;
}

/** The config with secret values replaced, for the start-up log line. */
export function redactConfig<S extends Schema>(schema: S, cfg: ConfigOf<S>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(schema)) {
    const v = (cfg as Record<string, unknown>)[key];
    out[key] = f.secret && v !== undefined ? '[redacted]' : v;
  }
  return out;
}

/** Markdown table of a schema, for README/operations docs. */
export function configDocTable(schema: Schema): string {
  const rows = Object.values(schema).map((f) => {
    const def = f.kind === 'required' ? (f.default === undefined ? '(required)' : JSON.stringify(f.default)) : '';
    return `| \`${f.env}\` | ${def} | ${f.doc}${f.secret ? ' (secret; `' + f.env + '_FILE` accepted)' : ''} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/**
 * main.ts helper: load or print every problem and exit(2).
 * @param write where problems go (stderr)
 */
export function loadConfigOrExit<S extends Schema>(
  schema: S,
  env: Env,
  options: LoadOptions = {},
  exit: (code: number) => never = (c) => process.exit(c),
  write: (s: string) => void = (s) => process.stderr.write(s),
): ConfigOf<S> {
  try {
    return loadConfig(schema, env, options);
  } catch (e) {
    if (e instanceof ConfigError) {
      write(e.message + '\n');
      return exit(2);
    }
    throw e;
  }
}
