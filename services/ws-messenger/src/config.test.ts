import { ConfigError, loadConfig } from '@hubbub/runtime';
import { cliOverrides, configSchema, loadOptions } from './config';

describe('config (spec §3.9)', () => {
  it('has the spec defaults', () => {
    const c = loadConfig(configSchema, {}, loadOptions);
    expect(c).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
      maxFrameBytes: 1_048_576,
      maxOutbufBytes: 16_777_216,
      maxReplyBytes: 8_388_608,
      maxMessageBytes: 65_536,
      limitMessages: 100,
      limitUsers: 100,
      updateMaxItems: 1000,
      maxFlowUsers: 1000,
      ratePerS: 50,
      rateBurst: 100,
      maxConnections: 20_000,
      maxConnectionsPerIp: 256,
      httpRequestTimeoutMs: 10_000,
      maxHttpPending: 2_000,
      maxHttpPendingPerIp: 32,
      pingIntervalMs: 20_000,
      pingTimeoutMs: 20_000,
      unauthIdleTimeoutMs: 300_000,
      tokenCacheMs: 10_000,
      channelFactsMs: 60_000,
      backendTimeoutMs: 2_000,
      trustedProxies: [],
      publicChannels: ['general'],
      identityAddr: '127.0.0.1:50051',
      messageStoreAddr: '127.0.0.1:50052',
      logLevel: 'info',
      identityVerifyTransport: 'nats',
    });
  });

  it('takes WSM_IDENTITY_VERIFY_TRANSPORT nats or grpc only', () => {
    const grpc = loadConfig(configSchema, { WSM_IDENTITY_VERIFY_TRANSPORT: 'grpc' }, loadOptions);
    expect(grpc.identityVerifyTransport).toBe('grpc');
    expect(() => loadConfig(configSchema, { WSM_IDENTITY_VERIFY_TRANSPORT: 'h2' }, loadOptions)).toThrow(
      'WSM_IDENTITY_VERIFY_TRANSPORT',
    );
  });

  it('lists every problem at once: bad values, unknown WSM_ keys, a TLS cert without key', () => {
    try {
      loadConfig(configSchema, { WSM_PORT: 'x', WSM_RATE_PER_S: '-1', WSM_NOPE: '1' }, loadOptions);
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([
        'WSM_PORT must be an integer, got "x"',
        'WSM_RATE_PER_S must be >= 0',
        'WSM_NOPE is not a known setting',
      ]);
    }
    expect(() => loadConfig(configSchema, { WSM_TLS_CERT_FILE: '/c.pem' }, loadOptions)).toThrow(
      'WSM_TLS_CERT_FILE is set but WSM_TLS_KEY_FILE is not',
    );
  });

  it('takes --host/--port (both spellings) over the env; rejects other arguments', () => {
    expect(cliOverrides(['--host', '127.0.0.1', '--port=9000'])).toEqual({
      env: { WSM_HOST: '127.0.0.1', WSM_PORT: '9000' },
      problems: [],
    });
    expect(cliOverrides(['--verbose', '--port']).problems).toEqual([
      'unknown argument --verbose (use --host, --port)',
      '--port needs a value',
    ]);
    const env = { WSM_PORT: '1', ...cliOverrides(['--port', '2']).env };
    expect(loadConfig(configSchema, env, loadOptions).port).toBe(2);
  });
});
