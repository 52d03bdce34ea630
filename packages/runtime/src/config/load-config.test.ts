import {
  ConfigError,
  bool,
  configDocTable,
  int,
  list,
  loadConfig,
  loadConfigOrExit,
  oneOf,
  redactConfig,
  str,
} from '../index';

const schema = {
  port: int({ env: 'SVC_PORT', doc: 'port', default: 6667, min: 0, max: 65535 }),
  host: str({ env: 'SVC_HOST', doc: 'host', default: '127.0.0.1' }),
  tls: bool({ env: 'SVC_TLS', doc: 'tls', default: false }),
  mode: oneOf({ env: 'SVC_MODE', doc: 'mode', values: ['a', 'b'] as const, default: 'a' }),
  channels: list({ env: 'SVC_CHANNELS', doc: 'channels', default: ['general'], item: /^[a-z]+$/ }),
  token: str({ env: 'SVC_TOKEN', doc: 'token', secret: true }).optional(),
  db: str({ env: 'DATABASE_URL', doc: 'db', secret: true }),
} as const;

describe('loadConfig', () => {
  it('applies defaults and parses values', () => {
    const cfg = loadConfig(schema, {
      DATABASE_URL: 'postgres://x',
      SVC_PORT: '0',
      SVC_TLS: 'yes',
      SVC_CHANNELS: 'a, b',
    });
    expect(cfg).toEqual({
      port: 0,
      host: '127.0.0.1',
      tls: true,
      mode: 'a',
      channels: ['a', 'b'],
      token: undefined,
      db: 'postgres://x',
    });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('lists every problem at once', () => {
    let err: unknown;
    try {
      loadConfig(
        schema,
        { SVC_PORT: 'abc', SVC_TLS: 'maybe', SVC_MODE: 'c', SVC_CHANNELS: 'ok,BAD', SVC_TYPO: '1' },
        { strictPrefix: 'SVC_' },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toEqual([
      'SVC_PORT must be an integer, got "abc"',
      'SVC_TLS must be a boolean (true/false), got "maybe"',
      'SVC_MODE must be one of a, b, got "c"',
      'SVC_CHANNELS has invalid items: BAD',
      'DATABASE_URL is required (db)',
      'SVC_TYPO is not a known setting',
    ]);
  });

  it('never rejects platform-wide names that share a service prefix', () => {
    const cfg = loadConfig(
      { port: int({ env: 'IDENTITY_PORT', doc: 'port', default: 1 }) },
      { IDENTITY_ADDR: '127.0.0.1:1', IDENTITY_DATABASE_URL: 'postgres://x' },
      { strictPrefix: 'IDENTITY_' },
    );
    expect(cfg.port).toBe(1);
  });

  it('reads secrets from *_FILE and refuses both forms at once', () => {
    const cfg = loadConfig(
      schema,
      { DATABASE_URL: 'postgres://x', SVC_TOKEN_FILE: '/run/secret' },
      { readFile: (p) => (p === '/run/secret' ? 's3cret' : '') },
    );
    expect(cfg.token).toBe('s3cret');
    expect(redactConfig(schema, cfg)).toMatchObject({ token: '[redacted]', db: '[redacted]', port: 6667 });
    expect(() => loadConfig(schema, { DATABASE_URL: 'x', SVC_TOKEN: 'a', SVC_TOKEN_FILE: '/f' })).toThrow(
      /SVC_TOKEN and SVC_TOKEN_FILE are both set/,
    );
  });

  it('runs cross-field checks after field validation', () => {
    expect(() =>
      loadConfig(
        schema,
        { DATABASE_URL: 'x', SVC_TLS: 'true' },
        { checks: [(c) => (c['tls'] && !c['token'] ? ['SVC_TLS is set but SVC_TOKEN is not'] : [])] },
      ),
    ).toThrow(/SVC_TLS is set but SVC_TOKEN is not/);
  });

  it('loadConfigOrExit prints the problems and exits 2', () => {
    let out = '';
    let code = -1;
    expect(() =>
      loadConfigOrExit(
        schema,
        { SVC_PORT: '70000' },
        {},
        (c) => {
          code = c;
          throw new Error('exit');
        },
        (s) => (out += s),
      ),
    ).toThrow('exit');
    expect(code).toBe(2);
    expect(out).toContain('SVC_PORT must be <= 65535');
    expect(out).toContain('DATABASE_URL is required');
  });

  it('renders a documentation table', () => {
    expect(configDocTable(schema)).toContain('| `SVC_PORT` | 6667 | port |');
  });
});
