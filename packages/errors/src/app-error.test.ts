import { AppError, Code, codeName, errors, fromGrpcStatus, isAppError, toGrpcStatus } from './index';

describe('AppError', () => {
  it('turns an unknown error into INTERNAL without leaking its message', () => {
    const e = AppError.from(new Error('password=hunter2'));
    expect(e.code).toBe(Code.INTERNAL);
    expect(e.message).toBe('internal error');
    expect(JSON.stringify(e)).not.toContain('hunter2');
  });

  it('keeps an AppError as it is', () => {
    const e = errors.notFound('USER_NOT_FOUND', 'no such user');
    expect(AppError.from(e)).toBe(e);
    expect(isAppError(e)).toBe(true);
    expect(isAppError({ code: 5 })).toBe(false);
    expect(codeName(e.code)).toBe('NOT_FOUND');
  });

  it('round-trips through the gRPC status mapping with reason and details', () => {
    const e = errors.resourceExhausted('LOGIN_THROTTLED', 'too many attempts', { retryAfterMs: '1500' });
    const st = toGrpcStatus(e);
    expect(st.code).toBe(8);
    const t = new Map(st.trailers);
    const back = fromGrpcStatus(st.code, st.details, (k) => t.get(k), [...t.keys()]);
    expect(back.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(back.reason).toBe('LOGIN_THROTTLED');
    expect(back.message).toBe('too many attempts');
    expect(back.details).toEqual({ retryafterms: '1500' });
  });

  it('maps an unknown numeric status to UNKNOWN', () => {
    const back = fromGrpcStatus(99, '', () => undefined);
    expect(back.code).toBe(Code.UNKNOWN);
    expect(back.message).toBe('request failed');
  });
});
