import { RateLimiter, Throttle } from './throttle';

const settings = {
  windowMs: 60_000,
  freeFailures: 3,
  baseDelayMs: 1_000,
  maxDelayMs: 4_000,
  lockFailures: 6,
  lockMs: 10_000,
};

describe('Throttle', () => {
  let now = 0;
  const clock = (): number => now;
  beforeEach(() => {
    now = 100_000;
  });

  it("adopts a shared ledger's counters, keeps its own attempts in flight, and drops counters whose window is over", () => {
    const t = new Throttle(settings, clock);
    // Four failures made elsewhere, the last just now: the next attempt waits the 4th failure's delay.
    t.adopt('k', { failures: 4, firstFailAt: now - 5_000, lastFailAt: now, lockedUntil: 0 });
    expect(t.check('k')).toEqual({ ok: false, retryAfterMs: 2_000, locked: false });
    // A lock made elsewhere.
    t.adopt('k', { failures: 6, firstFailAt: now - 5_000, lastFailAt: now, lockedUntil: now + 10_000 });
    expect(t.check('k')).toEqual({ ok: false, retryAfterMs: 10_000, locked: true });
    expect(t.lockedForMs('k')).toBe(10_000);
    // Cleared elsewhere (a success): nothing throttles; an attempt in flight here stays counted.
    t.begin('k');
    t.adopt('k', undefined);
    expect(t.check('k')).toEqual({ ok: true });
    t.done('k', false);
    expect(t.check('k')).toEqual({ ok: true });
    // Counters older than the window (and no lock) are none.
    t.adopt('old', { failures: 5, firstFailAt: now - 70_000, lastFailAt: now - 65_000, lockedUntil: 0 });
    expect(t.check('old')).toEqual({ ok: true });
  });

  it('allows free failures, then growing delays, then a lock', () => {
    const t = new Throttle(settings, clock);
    for (let i = 0; i < 3; i++) {
      expect(t.check('k')).toEqual({ ok: true });
      t.begin('k');
      t.done('k', false);
    }
    expect(t.check('k')).toEqual({ ok: false, retryAfterMs: 1_000, locked: false });
    now += 1_000;
    expect(t.check('k').ok).toBe(true);
    t.fail('k'); // 4th
    expect(t.check('k')).toMatchObject({ ok: false, retryAfterMs: 2_000 });
    now += 2_000;
    t.fail('k'); // 5th
    expect(t.check('k')).toMatchObject({ ok: false, retryAfterMs: 4_000 });
    now += 4_000;
    t.fail('k'); // 6th → lock
    expect(t.check('k')).toEqual({ ok: false, retryAfterMs: 10_000, locked: true });
    expect(t.lockedForMs('k')).toBe(10_000);
    now += 10_000;
    expect(t.check('k').ok).toBe(true);
    t.fail('k'); // still within the window: locked again at once
    expect(t.check('k')).toMatchObject({ ok: false, locked: true });
  });

  it('counts attempts in flight once the key has failed, so parallel guesses are refused', () => {
    const t = new Throttle(settings, clock);
    t.fail('k');
    for (let i = 0; i < 2; i++) {
      expect(t.check('k').ok).toBe(true);
      t.begin('k');
    }
    expect(t.check('k').ok).toBe(false);
  });

  it('allows parallel attempts of a healthy key up to maxInFlight', () => {
    const t = new Throttle({ ...settings, maxInFlight: 8 }, clock);
    for (let i = 0; i < 8; i++) {
      expect(t.check('k').ok).toBe(true);
      t.begin('k');
    }
    expect(t.check('k')).toMatchObject({ ok: false, locked: false });
    t.done('k', true);
    expect(t.check('k').ok).toBe(true);
  });

  it('forgets failures after the window and on success', () => {
    const t = new Throttle(settings, clock);
    for (let i = 0; i < 3; i++) t.fail('k');
    expect(t.check('k').ok).toBe(false);
    now += 60_001;
    expect(t.check('k').ok).toBe(true);
    for (let i = 0; i < 2; i++) t.fail('j');
    t.begin('j');
    t.done('j', true);
    t.fail('j');
    t.fail('j');
    expect(t.check('j').ok).toBe(true);
  });
});

describe('RateLimiter', () => {
  it('allows max per window', () => {
    let now = 0;
    const r = new RateLimiter(2, 1_000, () => now);
    expect(r.take('a')).toBe(0);
    expect(r.take('a')).toBe(0);
    expect(r.take('a')).toBe(1_000);
    expect(r.take('b')).toBe(0);
    now = 1_000;
    expect(r.take('a')).toBe(0);
  });
});
