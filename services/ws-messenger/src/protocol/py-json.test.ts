import { pyFloatRepr, pyStr } from './py-json';
import { encodeFlow, encodeMessage, encodeReply, encodeUser } from './frames';

describe('pyStr (Python json.dumps, ensure_ascii)', () => {
  it.each([
    ['plain', '"plain"'],
    ['привет', '"\\u043f\\u0440\\u0438\\u0432\\u0435\\u0442"'],
    ['😀', '"\\ud83d\\ude00"'],
    ['a"b\\c/d', '"a\\"b\\\\c/d"'],
    ['\n\r\t\b\f', '"\\n\\r\\t\\b\\f"'],
    ['\u0000\u001f\u007f\u00ff', '"\\u0000\\u001f\\u007f\\u00ff"'],
    ['<img src=x>', '"<img src=x>"'],
  ])('encodes %j', (s, out) => {
    expect(pyStr(s)).toBe(out);
  });
});

describe('pyFloatRepr (Python repr(float))', () => {
  it.each([
    [1.5, '1.5'],
    [1, '1.0'],
    [1e16, '1e+16'],
    [1e15, '1000000000000000.0'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [123.456, '123.456'],
    [-2.5e-7, '-2.5e-07'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [Infinity, 'inf'],
    [0.1, '0.1'],
  ])('repr(%p) = %s', (x, s) => {
    expect(pyFloatRepr(x)).toBe(s);
  });
});

describe('frames', () => {
  it('writes every key in order with nulls (User, password and email always null)', () => {
    expect(encodeUser({ uuid: 'u', auth_id: 't', token_ttl: 5 })).toBe(
      '{"uuid": "u", "login": null, "username": null, "bio": null, "avatar": null, "password": null, "is_bot": null, "auth_id": "t", "token_ttl": 5, "email": null}',
    );
    expect(encodeFlow({ uuid: '7', users: [] })).toBe(
      '{"time": null, "type": null, "title": null, "info": null, "owner": null, "users": [], "message_start": null, "message_end": null, "uuid": "7"}',
    );
    expect(encodeMessage({ uuid: '9', edited_status: false, client_id: 1 })).toBe(
      '{"uuid": "9", "text": null, "from_user": null, "time": null, "from_flow": null, "file_picture": null, "file_video": null, "file_audio": null, "file_document": null, "emoji": null, "edited_time": null, "edited_status": false, "client_id": 1}',
    );
  });

  it('produces the exact 405 and 401 frames of §2.11', () => {
    expect(encodeReply({ type: 'error', status: 'METHOD_NOT_ALLOWED', data: null, time: 3 })).toBe(
      '{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Specified method is invalid for this resource", "code": 405, "status": "Method Not Allowed", "time": 3}}',
    );
    expect(
      encodeReply({ type: 'error', status: 'UNAUTHORIZED', detail: 'Authentication User failed', data: null, time: 3 }),
    ).toBe(
      '{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Authentication User failed", "code": 401, "status": "Unauthorized", "time": 3}}',
    );
  });

  it('writes data with all five keys', () => {
    expect(encodeReply({ type: 'all_flow', status: 'NOT_FOUND', data: { time: 3, flow: [] }, time: 3 })).toBe(
      '{"type": "all_flow", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": {"time": 3, "user": null, "meta": null, "flow": [], "message": null}, "errors": {"detail": "Nothing matches the given URI", "code": 404, "status": "Not Found", "time": 3}}',
    );
  });
});
