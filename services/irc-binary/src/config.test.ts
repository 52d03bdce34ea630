import { buildConfig, parseArgs } from './config';

const readable = (): boolean => true;

describe('parseArgs (dumdum-server flags, §3.11)', () => {
  it('parses every flag', () => {
    const { args, problems } = parseArgs([
      '-vv',
      '-c',
      'a',
      'b',
      '-c',
      'a',
      'c',
      '--host',
      '::1',
      '--port',
      '7000',
      '--cert',
      'x.crt:y.key',
      '--max-messages',
      '5',
    ]);
    expect(problems).toEqual([]);
    expect(args).toEqual({
      help: false,
      verbose: 2,
      channels: ['a', 'b', 'a', 'c'],
      host: '::1',
      port: 7000,
      certFile: 'x.crt',
      keyFile: 'y.key',
      maxMessages: 5,
    });
  });
  it('splits --cert at the first colon; CERT alone is key and chain in one file (D15)', () => {
    expect(parseArgs(['--cert', 'a:b:c']).args).toMatchObject({ certFile: 'a', keyFile: 'b:c' });
    expect(parseArgs(['--cert', 'combined.pem']).args).toMatchObject({
      certFile: 'combined.pem',
      keyFile: 'combined.pem',
    });
  });
  it('reports unknown flags and bad values as usage problems', () => {
    expect(parseArgs(['--nope']).problems).toEqual(['unrecognized arguments: --nope']);
    expect(parseArgs(['--port', 'x']).problems[0]).toMatch(/invalid port/);
    expect(parseArgs(['--port']).problems[0]).toMatch(/expected one argument/);
    expect(parseArgs(['-c']).problems[0]).toMatch(/at least one/);
  });
  it('-h', () => {
    expect(parseArgs(['-h']).args.help).toBe(true);
  });
});

describe('buildConfig (CLI over env over default)', () => {
  it('uses the defaults of §5.2', () => {
    const c = buildConfig({}, [], readable).config!;
    expect(c).toMatchObject({
      logLevel: 'warn',
      port: 6667,
      host: '',
      channels: ['general'],
      metricsPort: 9453,
      helloTimeoutMs: 10_000,
      tlsHandshakeTimeoutMs: 10_000,
      authTimeoutMs: 60_000,
      maxAuthFailures: 10,
      allowPlaintextTokens: false,
      maxOutbufBytes: 1_048_576,
      maxPendingFrames: 256,
      sendRatePerS: 20,
      sendBurst: 40,
      maxConnections: 20_000,
      maxConnectionsPerIp: 0,
      backendTimeoutMs: 2_000,
      presenceTtlMs: 30_000,
      tlsCertFile: undefined,
    });
  });
  it('CLI beats env; -c replaces IRCB_CHANNELS; duplicates collapse keeping the first (L1)', () => {
    const c = buildConfig(
      { IRCB_PORT: '7001', IRCB_CHANNELS: 'x,y', LOG_LEVEL: 'error' },
      ['--port', '7002', '-c', 'a', 'b', '-c', 'a', 'c', '-v'],
      readable,
    ).config!;
    expect(c.port).toBe(7002);
    expect(c.channels).toEqual(['a', 'b', 'c']);
    expect(c.logLevel).toBe('info');
    const e = buildConfig({ IRCB_PORT: '7001', IRCB_CHANNELS: 'x,y,x' }, [], readable).config!;
    expect(e).toMatchObject({ port: 7001, channels: ['x', 'y'] });
  });
  it('-vv means debug', () => {
    expect(buildConfig({}, ['-vv'], readable).config!.logLevel).toBe('debug');
  });
  it('L15 a configured channel of 33 bytes is a startup error naming it; every problem is listed at once', () => {
    const long = 'c'.repeat(33);
    const r = buildConfig({ IRCB_PORT: 'abc', IRCB_SEND_BURST: '0', IRCB_BOGUS: '1' }, ['-c', long], readable);
    expect(r.config).toBeUndefined();
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/IRCB_PORT/),
        expect.stringMatching(/IRCB_SEND_BURST/),
        expect.stringMatching(/IRCB_BOGUS/),
      ]),
    );
    const r2 = buildConfig({}, ['-c', long, '€'.repeat(11)], readable);
    expect(r2.problems).toEqual([expect.stringContaining(long), expect.stringContaining('€'.repeat(11))]);
  });
  it('unreadable certificate or key files are problems; the env gives unambiguous paths', () => {
    const r = buildConfig(
      { IRCB_TLS_CERT_FILE: '/x:y/cert.pem', IRCB_TLS_KEY_FILE: '/k.pem' },
      [],
      (p) => p === '/x:y/cert.pem',
    );
    expect(r.problems).toEqual(['cannot read key file /k.pem']);
    const ok = buildConfig({ IRCB_TLS_CERT_FILE: '/x:y/cert.pem' }, [], readable).config!;
    expect(ok).toMatchObject({ tlsCertFile: '/x:y/cert.pem', tlsKeyFile: '/x:y/cert.pem' });
    expect(buildConfig({ IRCB_TLS_KEY_FILE: '/k.pem' }, [], readable).problems[0]).toMatch(/IRCB_TLS_CERT_FILE is not/);
  });
  it('--max-messages is accepted and remembered as ignored (D1)', () => {
    expect(buildConfig({}, ['--max-messages', '0'], readable).config!.maxMessagesIgnored).toBe(0);
  });
});
