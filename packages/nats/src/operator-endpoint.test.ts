/**
 * The operator endpoint handler on its own (no NATS): what it accepts, what it refuses with which code, what it
 * logs, and that nothing it is given makes it throw. identity's and message-store's integration tests drive the
 * same handler over real NATS.
 */
import { Code, errors } from '@hubbub/errors';
import { createLogger } from '@hubbub/runtime';
import { DEFAULT_OPERATOR, operatorHandler } from './operator-endpoint';
import type { OperatorEndpoint, OperatorEndpointsOptions } from './operator-endpoint';
import type { Replyable } from './rpc';

interface Req {
  name: string;
  by: string;
}
const ReqCodec = {
  toJSON: (m: Req): unknown => ({ name: m.name, by: m.by }),
  fromJSON: (o: unknown): Req => {
    const j = (o ?? {}) as Record<string, unknown>;
    return { name: typeof j['name'] === 'string' ? j['name'] : '', by: typeof j['by'] === 'string' ? j['by'] : '' };
  },
};

interface Line {
  level: string | number;
  code?: string;
  action?: string;
  by?: string;
  name?: string;
  status?: number;
  reason?: string;
}

type Reply = { data?: string; error?: [number, string] };

function request(body: string): Replyable & { replies: Reply[] } {
  const replies: Reply[] = [];
  return {
    data: new TextEncoder().encode(body),
    replies,
    respond: (data) => {
      replies.push({ data: Buffer.from(data ?? new Uint8Array()).toString('utf8') });
      return true;
    },
    respondError: (code, description) => {
      replies.push({ error: [code, description] });
      return true;
    },
  };
}

function setup(run: OperatorEndpoint<Req>['run'], maxReplyBytes = 1_000) {
  const lines: Line[] = [];
  const log = createLogger({
    service: 'operator-endpoint-unit',
    level: 'info',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Line) },
  });
  const o: OperatorEndpointsOptions = {
    queue: 'unit',
    package: 'hubbub.unit.v1',
    log,
    maxReplyBytes: () => maxReplyBytes,
    logCodes: {
      action: 'UNIT_ACTION',
      refused: 'UNIT_REFUSED',
      internal: 'UNIT_INTERNAL',
      replyTooLarge: 'UNIT_REPLY_TOO_LARGE',
      endpoint: 'UNIT_ENDPOINT',
    },
  };
  const calls: [Req, string][] = [];
  const handle = operatorHandler<Req>(
    {
      name: 'admin-unit-poke',
      action: 'poke',
      subject: '',
      request: ReqCodec,
      types: { request: 'PokeRequest', reply: 'PokeResponse' },
      maxRequestBytes: 100,
      by: (r) => r.by,
      run: (req, by) => {
        calls.push([req, by]);
        return run(req, by);
      },
    },
    o,
  );
  return { lines, calls, handle };
}

const ok: OperatorEndpoint<Req>['run'] = (req) =>
  Promise.resolve({ reply: new TextEncoder().encode(`{"poked":"${req.name}"}`), fields: { name: req.name } });

describe('operator endpoint handler', () => {
  it('runs one JSON object, answers its reply and logs the action with the operator and the fields', async () => {
    const h = setup(ok);
    const m = request(' \n{"name":"ann","by":"ops-bob"}');
    await h.handle(m);
    expect(m.replies).toEqual([{ data: '{"poked":"ann"}' }]);
    expect(h.calls).toEqual([[{ name: 'ann', by: 'ops-bob' }, 'ops-bob']]);
    expect(h.lines).toContainEqual(
      expect.objectContaining({ code: 'UNIT_ACTION', action: 'poke', by: 'ops-bob', name: 'ann' }),
    );
  });

  it('names the default operator when by is empty', async () => {
    const h = setup(ok);
    await h.handle(request('{"name":"ann"}'));
    expect(h.calls[0]![1]).toBe(DEFAULT_OPERATOR);
  });

  it.each(['not json', '[]', '"ann"', '42', 'null', 'true', '', '[{"name":"ann"}]', '{"name":'])(
    'refuses %j with INVALID_ARGUMENT BAD_REQUEST and runs nothing',
    async (body) => {
      const h = setup(ok);
      const m = request(body);
      await expect(h.handle(m)).resolves.toBeUndefined();
      expect(m.replies).toEqual([
        { error: [Code.INVALID_ARGUMENT, 'BAD_REQUEST: not the JSON of hubbub.unit.v1.PokeRequest'] },
      ]);
      expect(h.calls).toEqual([]);
      expect(h.lines).toContainEqual(
        expect.objectContaining({ code: 'UNIT_REFUSED', action: 'poke', reason: 'BAD_REQUEST' }),
      );
    },
  );

  it('refuses a request over the size limit before parsing it', async () => {
    const h = setup(ok);
    const m = request(JSON.stringify({ name: 'x'.repeat(100) }));
    await h.handle(m);
    expect(m.replies).toEqual([
      { error: [Code.INVALID_ARGUMENT, 'REQUEST_TOO_LARGE: requests are at most 100 bytes'] },
    ]);
    expect(h.calls).toEqual([]);
  });

  it.each(['two\nlines', 'tab\there', 'x'.repeat(65), 'é'.repeat(33)])(
    'refuses the operator name %j with BY_INVALID',
    async (by) => {
      const h = setup(ok);
      const m = request(JSON.stringify({ name: 'ann', by }));
      await h.handle(m);
      expect(m.replies[0]?.error?.[0]).toBe(Code.INVALID_ARGUMENT);
      expect(m.replies[0]?.error?.[1]).toMatch(/^BY_INVALID: /);
      expect(h.calls).toEqual([]);
    },
  );

  it("answers the work's AppError with its code and logs a refusal", async () => {
    const h = setup(() => Promise.reject(errors.notFound('USER_NOT_FOUND', 'no such account')));
    const m = request('{"name":"zed","by":"ops"}');
    await h.handle(m);
    expect(m.replies).toEqual([{ error: [Code.NOT_FOUND, 'USER_NOT_FOUND: no such account'] }]);
    expect(h.lines).toContainEqual(
      expect.objectContaining({ code: 'UNIT_REFUSED', by: 'ops', status: Code.NOT_FOUND, reason: 'USER_NOT_FOUND' }),
    );
  });

  it('answers a bug in the work with INTERNAL, logs it at error level, and does not throw', async () => {
    const h = setup(() => Promise.reject(new TypeError('boom')));
    const m = request('{"name":"zed"}');
    await expect(h.handle(m)).resolves.toBeUndefined();
    expect(m.replies[0]?.error?.[0]).toBe(Code.INTERNAL);
    expect(h.lines).toContainEqual(expect.objectContaining({ level: 'error', code: 'UNIT_INTERNAL', action: 'poke' }));
  });

  it('refuses a reply larger than the NATS server accepts, after logging what was done', async () => {
    const h = setup(() => Promise.resolve({ reply: new Uint8Array(2_000), fields: { ids: ['1', '2'] } }), 1_000);
    const m = request('{"name":"zed"}');
    await h.handle(m);
    expect(m.replies[0]?.error?.[0]).toBe(Code.RESOURCE_EXHAUSTED);
    expect(m.replies[0]?.error?.[1]).toMatch(/^REPLY_TOO_LARGE: /);
    expect(h.lines).toContainEqual(expect.objectContaining({ code: 'UNIT_ACTION' }));
    expect(h.lines).toContainEqual(expect.objectContaining({ code: 'UNIT_REPLY_TOO_LARGE' }));
  });

  it('does not throw when the reply cannot be published', async () => {
    const h = setup(ok);
    const m = request('{"name":"ann"}');
    m.respond = () => {
      throw new Error('connection closed');
    };
    await expect(h.handle(m)).resolves.toBeUndefined();
  });
});
