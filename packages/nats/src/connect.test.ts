import { inboxPrefixFor, parseNatsServers } from './connect';

describe('parseNatsServers', () => {
  it('takes user and password out of the URL, as the NATS CLI reads them', () => {
    expect(parseNatsServers('nats://door:s3cr%40t@10.0.0.1:4222')).toEqual({
      servers: ['nats://10.0.0.1:4222'],
      auth: { user: 'door', pass: 's3cr@t' },
    });
  });
  it('reads a lone userinfo as a token, and the first credentials of a list apply', () => {
    expect(parseNatsServers(' nats://tok@a:4222 , nats://u:p@b:4222,nats://c:4222 ')).toEqual({
      servers: ['nats://a:4222', 'nats://b:4222', 'nats://c:4222'],
      auth: { token: 'tok' },
    });
  });
  it('leaves URLs without credentials alone', () => {
    expect(parseNatsServers('nats://127.0.0.1:4222')).toEqual({ servers: ['nats://127.0.0.1:4222'], auth: undefined });
    expect(parseNatsServers('127.0.0.1:4222')).toEqual({ servers: ['127.0.0.1:4222'], auth: undefined });
  });
});

describe('inboxPrefixFor', () => {
  it('gives each NATS user its own inbox prefix, a single subject token', () => {
    expect(inboxPrefixFor('ws-messenger')).toBe('_INBOX_ws-messenger');
    expect(inboxPrefixFor('message-store')).toBe('_INBOX_message-store');
    expect(inboxPrefixFor('a.b*c>d e')).toBe('_INBOX_a_b_c_d_e');
  });
  it('keeps the default for connections without a user', () => {
    expect(inboxPrefixFor(undefined)).toBe('_INBOX');
    expect(inboxPrefixFor('')).toBe('_INBOX');
  });
});
