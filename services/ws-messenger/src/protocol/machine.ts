/**
 * Connection state (spec §3.1). Theory of operation:
 *
 * Rule 1: every state transition lives in TRANSITIONS; anything else is a bug and throws.
 * Rule 2: CLOSED is terminal.
 * Rule 3: a connection is not bound to a user; only the subscription is (`subscribedUser`).
 */
export const ConnState = { Open: 'OPEN', Subscribed: 'SUBSCRIBED', Closed: 'CLOSED' } as const;
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

export const ConnEvent = {
  Subscribe: 'subscribe',
  Unsubscribe: 'unsubscribe',
  TokenEnded: 'token_ended',
  Close: 'close',
} as const;
export type ConnEvent = (typeof ConnEvent)[keyof typeof ConnEvent];

export const TRANSITIONS: Readonly<Record<ConnState, Partial<Record<ConnEvent, ConnState>>>> = {
  OPEN: { subscribe: 'SUBSCRIBED', unsubscribe: 'OPEN', close: 'CLOSED' },
  SUBSCRIBED: { subscribe: 'SUBSCRIBED', unsubscribe: 'OPEN', token_ended: 'OPEN', close: 'CLOSED' },
  CLOSED: { close: 'CLOSED' },
};

export class ConnectionMachine {
  private s: ConnState = ConnState.Open;
  private user: string | undefined;

  get state(): ConnState {
    return this.s;
  }
  /** The user whose changes are pushed, while SUBSCRIBED. */
  get subscribedUser(): string | undefined {
    return this.s === ConnState.Subscribed ? this.user : undefined;
  }

  /** Applies an event; returns false (no change) when the event is not allowed in this state. */
  apply(ev: ConnEvent, user?: string): boolean {
    const next = TRANSITIONS[this.s][ev];
    if (next === undefined) return false;
    this.s = next;
    this.user = next === ConnState.Subscribed ? user : undefined;
    return true;
  }
}
