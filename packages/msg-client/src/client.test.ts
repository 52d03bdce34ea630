import { messagesV1 } from '@hubbub/proto';
import { isRetrySafe } from './client';
import { newMessage, snowflakeParts } from './helpers';
import { eventKey } from './subscribe';

const msg = (clientKey: string): messagesV1.NewMessage => newMessage({ channelId: '1', text: 'x', clientKey });

describe('isRetrySafe', () => {
  it('retries reads and idempotent membership calls', () => {
    expect(isRetrySafe('listMessages', {})).toBe(true);
    expect(isRetrySafe('ensurePublicChannels', {})).toBe(true);
    expect(isRetrySafe('joinChannel', {})).toBe(true);
  });

  it('retries posts only when every message carries a client key', () => {
    expect(isRetrySafe('postMessage', { principal: undefined, message: msg('k') })).toBe(true);
    expect(isRetrySafe('postMessage', { principal: undefined, message: msg('') })).toBe(false);
    expect(isRetrySafe('postMessages', { principal: undefined, messages: [msg('a'), msg('b')] })).toBe(true);
    expect(isRetrySafe('postMessages', { principal: undefined, messages: [msg('a'), msg('')] })).toBe(false);
    expect(isRetrySafe('postOneliner', { principal: undefined, text: 'x', clientKey: '' })).toBe(false);
  });

  it('never retries creates, edits and deletes', () => {
    expect(isRetrySafe('createChannel', {})).toBe(false);
    expect(isRetrySafe('editMessage', {})).toBe(false);
    expect(isRetrySafe('deleteMessage', {})).toBe(false);
  });
});

describe('eventKey', () => {
  const m = { id: '42', changedAt: new Date(1_000) } as messagesV1.Message;
  it('dedupes posted events by id and changes by id, kind and change time', () => {
    const K = messagesV1.MessageEventKind;
    expect(eventKey({ kind: K.MESSAGE_EVENT_KIND_POSTED, message: m, channel: undefined })).toBe('p:42');
    const e1 = eventKey({ kind: K.MESSAGE_EVENT_KIND_EDITED, message: m, channel: undefined });
    const e2 = eventKey({
      kind: K.MESSAGE_EVENT_KIND_EDITED,
      message: { ...m, changedAt: new Date(2_000) },
      channel: undefined,
    });
    expect(e1).not.toBe(e2);
    expect(eventKey({ kind: K.MESSAGE_EVENT_KIND_DELETED, message: m, channel: undefined })).not.toBe(e1);
  });
});

describe('snowflakeParts', () => {
  it('decodes the irc-binary spec example', () => {
    expect(snowflakeParts('941303251838349312')).toEqual({ ms: 1795393470455, worker: 107, seq: 0 });
  });
});
