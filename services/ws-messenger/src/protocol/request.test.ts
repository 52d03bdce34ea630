import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRequest, decodeUtf8, versionReply } from './request';
import { encodeReply } from './frames';
import { WsmErrorCode } from './status';

interface Vector {
  name: string;
  text: string;
  detail: string;
}
const vectors = JSON.parse(readFileSync(join(__dirname, '../../test/vectors/validation.json'), 'utf8')) as Vector[];

describe('decodeRequest', () => {
  it.each(vectors.map((v) => [v.name, v] as const))('answers %s with the exact 415 detail', (_n, v) => {
    const r = decodeRequest(v.text, 1700000000);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe(v.detail.includes('Invalid JSON') ? WsmErrorCode.NotJson : WsmErrorCode.Validation);
    expect(encodeReply(r.reply)).toBe(
      `{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, ` +
        `"errors": {"detail": ${JSON.stringify(v.detail)}, "code": 415, "status": "Unsupported Media Type", "time": 1700000000}}`,
    );
  });

  it('produces the exact not-JSON frame of §2.10', () => {
    const r = decodeRequest('hello error!', 7);
    expect(r.ok || encodeReply(r.reply)).toBe(
      '{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "1 validation error for Request\\n__root__\\n  Invalid JSON (type=value_error.json)", "code": 415, "status": "Unsupported Media Type", "time": 7}}',
    );
  });

  it('accepts the leniencies of §4 D8 (auth alias, jsonapi null, no message uuid/client_id)', () => {
    const r = decodeRequest(
      '{"type": "auth", "jsonapi": null, "data": {"user": [{"login": "l", "password": "p"}]}}',
      1,
    );
    expect(r.ok && r.spec?.method).toBe('authentication');
    expect(r.ok && r.type).toBe('auth');
    expect(r.ok && r.version).toBe('1.0');
    const s = decodeRequest(
      '{"type": "send_message", "data": {"user": [{"uuid": "1", "auth_id": "x"}], "flow": [{"uuid": 5}], "message": [{"text": "hi"}]}}',
      1,
    );
    expect(s.ok && s.data.flow?.[0]?.uuid).toBe('5');
    expect(s.ok && s.data.message?.[0]?.client_id).toBeUndefined();
  });

  it('keeps the exact digits of a 64-bit id sent as a JSON number (R26)', () => {
    const r = decodeRequest(
      '{"type": "edited_message", "data": {"user": [{"uuid": "1"}], "message": [{"uuid": 941303251838349312, "text": "x"}]}}',
      1,
    );
    expect(r.ok && r.data.message?.[0]?.uuid).toBe('941303251838349312');
  });

  it('coerces file fields given as byte arrays to base64 (R19)', () => {
    const r = decodeRequest(
      '{"type": "send_message", "data": {"user": [{"uuid": "1"}], "flow": [{"uuid": "5"}], "message": [{"file_picture": [104, 105], "file_video": 12, "emoji": []}]}}',
      1,
    );
    expect(r.ok && r.data.message?.[0]).toEqual({ file_picture: 'aGk=', file_video: '12', emoji: '' });
  });

  it('reports an unknown type as a valid request without a spec (405/401 later)', () => {
    const r = decodeRequest('{"type": "wrong type", "data": {"user": [{"uuid": "1"}]}}', 1);
    expect(r.ok && r.spec).toBeUndefined();
    // Unknown types still need data.user (it authenticates the 401/405 decision).
    const n = decodeRequest('{"type": "wrong type"}', 1);
    expect(n.ok).toBe(false);
  });

  it('treats invalid UTF-8 in a binary frame as not JSON', () => {
    expect(decodeUtf8(new Uint8Array([0x7b, 0xff, 0x7d]))).toBeUndefined();
    const r = decodeRequest(decodeUtf8(new Uint8Array([0xff])), 1);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.code).toBe(WsmErrorCode.NotJson);
    expect(decodeUtf8(new TextEncoder().encode('{"a": "é"}'))).toBe('{"a": "é"}');
  });

  describe('a NUL character (U+0000) in a field the method stores → 415 (PostgreSQL text cannot hold it)', () => {
    const nul = (loc: string): string =>
      `${loc}\n  string must not contain the NUL character U+0000 (type=value_error.str.nul)`;
    const detail415 = (text: string): string | undefined => {
      const r = decodeRequest(text, 1);
      return r.ok ? undefined : (r.code === WsmErrorCode.Validation && r.reply.detail) || 'wrong code';
    };
    const req = (type: string, data: Record<string, unknown>): string =>
      JSON.stringify({ type, data: { user: [{ uuid: '1', auth_id: 't' }], ...data } });

    it.each([
      ['send_message text', req('send_message', { flow: [{ uuid: '5' }], message: [{ text: 'a\u0000b' }] }), 'text'],
      ['send_message emoji', req('send_message', { flow: [{ uuid: '5' }], message: [{ emoji: '\u0000' }] }), 'emoji'],
      [
        'send_message file_document',
        req('send_message', { flow: [{ uuid: '5' }], message: [{ file_document: 'x\u0000' }] }),
        'file_document',
      ],
      ['edited_message text', req('edited_message', { message: [{ uuid: '7', text: '\u0000' }] }), 'text'],
    ])('%s', (_n, text, field) => {
      expect(detail415(text)).toBe(`1 validation error for Request\n${nul(`data -> message -> 0 -> ${field}`)}`);
    });

    it('add_flow title and info, register_user login, username and email: every one, in field order', () => {
      expect(detail415(req('add_flow', { flow: [{ type: 'group', info: 'i\u0000', title: '\u0000t' }] }))).toBe(
        `2 validation errors for Request\n${nul('data -> flow -> 0 -> title')}\n${nul('data -> flow -> 0 -> info')}`,
      );
      const reg = JSON.stringify({
        type: 'register_user',
        data: { user: [{ email: 'a\u0000@b.cd', username: 'n\u0000', login: 'l\u0000', password: 'p\u0000' }] },
      });
      expect(detail415(reg)).toBe(
        '3 validation errors for Request\n' +
          [
            nul('data -> user -> 0 -> login'),
            nul('data -> user -> 0 -> username'),
            nul('data -> user -> 0 -> email'),
          ].join('\n'),
      );
    });

    it('follows the schema and "Requires" errors', () => {
      const text = JSON.stringify({
        type: 'send_message',
        data: { time: 'x', user: [{}], message: [{ text: '\u0000' }] },
      });
      expect(detail415(text)).toBe(
        '3 validation errors for Request\ndata -> time\n  value is not a valid integer (type=type_error.integer)\n' +
          'data -> flow\n  field required (type=value_error.missing)\n' +
          nul('data -> message -> 0 -> text'),
      );
    });

    it('is not checked where nothing is stored: passwords, lookups, ignored fields and items', () => {
      for (const text of [
        JSON.stringify({ type: 'authentication', data: { user: [{ login: 'l\u0000', password: 'p\u0000' }] } }),
        JSON.stringify({ type: 'register_user', data: { user: [{ login: 'l', password: 'p\u0000', bio: '\u0000' }] } }),
        req('ping_pong', { message: [{ text: '\u0000' }] }),
        req('send_message', { flow: [{ uuid: '5', title: '\u0000' }], message: [{ text: 'a' }, { text: '\u0000' }] }),
        req('edited_message', { message: [{ uuid: '7', text: 'a', emoji: '\u0000' }] }),
        req('user_info', { user: [{ uuid: '1' }, { uuid: 'guest:\u0000' }] }),
      ]) {
        expect(decodeRequest(text, 1).ok).toBe(true);
      }
    });
  });

  it('treats a UTF-8 BOM as not JSON (as Python json.loads does)', () => {
    const r = decodeRequest('\ufeff{"type": "ping_pong", "data": {"user": [{}]}}', 1);
    expect(!r.ok && r.code).toBe(WsmErrorCode.NotJson);
  });
});

describe('versionReply', () => {
  it.each(['1', '1.0', '1.9', '1.10', '1.05', '01.0'])('accepts version %s', (v) => {
    expect(versionReply(v, 1)).toBeUndefined();
  });
  it.each(['0.1', '2.0', 'abc', '1.', '.1', '1.0.0', ' 1.0', '', '10'])('rejects version %j with 505', (v) => {
    expect(encodeReply(versionReply(v, 5)!)).toBe(
      '{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Cannot fulfill request", "code": 505, "status": "Version Not Supported", "time": 5}}',
    );
  });
  it('accepts a JSON number 1.0 as version (coerced to "1.0", R21)', () => {
    const r = decodeRequest('{"type": "ping_pong", "jsonapi": {"version": 1.0}, "data": {"user": [{}]}}', 1);
    expect(r.ok && r.version).toBe('1.0');
  });
});
