/**
 * The pooled UTF-8 encoder that @hubbub/proto installs must produce exactly the bytes TextEncoder produces, for
 * every kind of text a network peer can send (lone surrogates included), and encoded messages must decode back.
 */
import { getTextEncoding } from '@bufbuild/protobuf/wire';
import { messagesV1 } from './index';

const samples = [
  '',
  'plain ascii',
  'héllo wörld',
  '日本語のテキスト',
  'emoji 🎉👩‍👩‍👧',
  'lone high \ud800 and low \udfff surrogates',
  '\u0000 nul and \ufeff bom',
  'x'.repeat(5_000),
  'ü'.repeat(70_000),
];

describe('protobuf text encoding', () => {
  it('is installed and encodes like TextEncoder', () => {
    const te = new TextEncoder();
    const enc = getTextEncoding();
    for (const s of samples) expect(Buffer.from(enc.encodeUtf8(s)).equals(Buffer.from(te.encode(s)))).toBe(true);
    expect(enc.encodeUtf8('a')).toBeInstanceOf(Buffer);
  });

  it('round-trips messages through encode and decode', () => {
    for (const text of samples) {
      const m = messagesV1.Message.fromPartial({ id: '7', channelId: '3', authorName: 'änn', text, tags: [text] });
      const back = messagesV1.Message.decode(messagesV1.Message.encode(m).finish());
      expect(back.text).toBe(new TextDecoder().decode(new TextEncoder().encode(text)));
      expect(back.authorName).toBe('änn');
    }
  });
});
