/**
 * Faster UTF-8 encoding for every protobuf message this process encodes (@bufbuild/protobuf's BinaryWriter,
 * which the generated code uses). Its default, `TextEncoder.encode`, allocates a fresh ArrayBuffer per string
 * field; `Buffer.from(text, 'utf8')` slices Node's buffer pool instead: about 2.5× faster for the short strings
 * of chat messages here (147 vs 365 ns), and the ArrayBuffers it does not create are GC work saved. A batch
 * reply of 100 messages encodes about 500 strings; profiles of message-store showed the default encoder at
 * 8% of its busy CPU. The output bytes are identical (lone surrogates become U+FFFD in both).
 * Decoding keeps TextDecoder, which is the faster of the two here.
 */
import { configureTextEncoding, getTextEncoding } from '@bufbuild/protobuf/wire';

const current = getTextEncoding();

configureTextEncoding({
  // Node's pool is a plain ArrayBuffer, never a SharedArrayBuffer.
  encodeUtf8: (text: string) => Buffer.from(text, 'utf8'),
  decodeUtf8: current.decodeUtf8,
  checkUtf8: current.checkUtf8,
});
