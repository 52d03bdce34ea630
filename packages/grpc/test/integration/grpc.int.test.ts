import { AppError, Code, errors } from '@hubbub/errors';
import { HealthCheckResponse_ServingStatus, HealthService } from '@hubbub/proto';
import type { HealthCheckRequest, HealthCheckResponse } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { createClient, implement, startGrpcServer } from '../../src/index';

// The health contract doubles as a test service: an implementation of Check that fails on demand.
const log = createLogger({ service: 'grpc-test', level: 'silent' });

describe('@hubbub/grpc', () => {
  it('serves health, maps AppError both ways, and applies deadlines', async () => {
    const impl = implement(
      { check: HealthService.check } as const,
      {
        check: async (req: HealthCheckRequest): Promise<HealthCheckResponse> => {
          if (req.service === 'throttled')
            throw errors.resourceExhausted('LOGIN_THROTTLED', 'too many attempts', { retryAfterMs: '500' });
          if (req.service === 'crash') throw new Error('secret internals');
          if (req.service === 'slow') await new Promise((r) => setTimeout(r, 300));
          return { status: HealthCheckResponse_ServingStatus.SERVING };
        },
      },
      log,
    );
    const srv = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      log,
      services: [
        {
          name: 'test.Echo',
          definition: { check: { ...HealthService.check, path: '/test.Echo/Check' } },
          implementation: impl,
        },
      ],
    });
    const health = createClient(HealthService, `127.0.0.1:${srv.port}`);
    const echo = createClient(
      { check: { ...HealthService.check, path: '/test.Echo/Check' } } as const,
      `127.0.0.1:${srv.port}`,
    );
    try {
      expect(await health.check({ service: '' })).toEqual({ status: HealthCheckResponse_ServingStatus.SERVING });
      expect(await health.check({ service: 'test.Echo' })).toEqual({
        status: HealthCheckResponse_ServingStatus.SERVING,
      });
      await expect(health.check({ service: 'nope' })).rejects.toMatchObject({ code: Code.NOT_FOUND });

      expect(await echo.check({ service: 'ok' })).toEqual({ status: HealthCheckResponse_ServingStatus.SERVING });
      const e1 = await echo.check({ service: 'throttled' }).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(AppError);
      expect(e1).toMatchObject({
        code: Code.RESOURCE_EXHAUSTED,
        reason: 'LOGIN_THROTTLED',
        message: 'too many attempts',
        details: { retryafterms: '500' },
      });
      const e2 = await echo.check({ service: 'crash' }).catch((e: unknown) => e);
      expect(e2).toMatchObject({ code: Code.INTERNAL, message: 'internal error' });
      expect(String((e2 as Error).message)).not.toContain('secret');
      await expect(echo.check({ service: 'slow' }, { deadlineMs: 50 })).rejects.toMatchObject({
        code: Code.DEADLINE_EXCEEDED,
      });
    } finally {
      health.close();
      echo.close();
      await srv.close();
    }
    // After close, calls fail as UNAVAILABLE and retries give up.
    const late = createClient(HealthService, `127.0.0.1:${srv.port}`);
    await expect(late.check({ service: '' }, { attempts: 2, deadlineMs: 500 })).rejects.toMatchObject({
      code: Code.UNAVAILABLE,
    });
    late.close();
  });
});
