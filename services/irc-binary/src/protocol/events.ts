/**
 * Frames as discriminated unions (spec §2.3, §2.4). Client and server frames are separate types
 * because the two directions use separate type-byte spaces.
 */

/** §2.4 Message record. `id` is a 64-bit snowflake (§2.7). */
export interface WireMessage {
  readonly id: bigint;
  readonly channel: string;
  readonly nick: string;
  readonly content: string;
}

/** Client → server (§2.3). */
export type ClientFrame =
  | { readonly type: 'Hello'; readonly version: number }
  | { readonly type: 'Authenticate'; readonly nick: string }
  | { readonly type: 'SendMessage'; readonly channel: string; readonly content: string }
  | { readonly type: 'ListChannels' }
  /** `before`/`after` 0 means "no bound" (§2.3). */
  | { readonly type: 'ListMessages'; readonly channel: string; readonly before: bigint; readonly after: bigint };

/** Server → client (§2.4). */
export type ServerFrame =
  | { readonly type: 'Hello'; readonly usingSsl: boolean }
  | { readonly type: 'IncompatibleVersion'; readonly version: number }
  | { readonly type: 'AcknowledgeAuthentication'; readonly success: boolean }
  | { readonly type: 'SendMessage'; readonly message: WireMessage }
  | { readonly type: 'ListChannels'; readonly channels: readonly string[] }
  | { readonly type: 'ListMessages'; readonly messages: readonly WireMessage[] };

export type ClientFrameType = ClientFrame['type'];
export type ServerFrameType = ServerFrame['type'];
