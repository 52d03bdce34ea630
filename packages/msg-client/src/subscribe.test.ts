import { encodeJson } from '@hubbub/nats';
import { messagesV1 } from '@hubbub/proto';
import { peekPostedId } from './subscribe';

describe('peekPostedId', () => {
  it('finds the message id in the proto3 JSON of a MessageEvent', () => {
    const ev = messagesV1.MessageEvent.fromPartial({
      kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED,
      message: { id: '941303251838349312', channelId: '7', text: 'has "id":"1" inside' },
      channel: { id: '7', slug: 'general' },
    });
    expect(peekPostedId(encodeJson(messagesV1.MessageEvent, ev))).toBe('941303251838349312');
  });
  it('returns undefined when the shape is unexpected (the caller decodes fully)', () => {
    expect(peekPostedId(Buffer.from('{"kind":"x"}'))).toBeUndefined();
    expect(peekPostedId(Buffer.from('{"message":{"id":"12x"}}'))).toBeUndefined();
  });
});
