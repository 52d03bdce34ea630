import { messagesV1 } from '@hubbub/proto';
import { encodeJson } from '@hubbub/nats';
import { peekMessageId } from './nats-events';

describe('peekMessageId', () => {
  it('finds the message id in the proto3 JSON of a MessageEvent', () => {
    const ev = messagesV1.MessageEvent.fromPartial({
      kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED,
      message: { id: '941303251838349312', channelId: '7', text: 'has "id":"1" inside' },
      channel: { id: '7', slug: 'general' },
    });
    expect(peekMessageId(encodeJson(messagesV1.MessageEvent, ev))).toBe('941303251838349312');
  });
  it('returns undefined when the shape is unexpected (the caller decodes fully)', () => {
    expect(peekMessageId(Buffer.from('{"kind":"x"}'))).toBeUndefined();
    expect(peekMessageId(Buffer.from('{"message":{"id":"12x"}}'))).toBeUndefined();
  });
});
