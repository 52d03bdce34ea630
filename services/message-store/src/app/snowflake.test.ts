import {
  MAX_SEQUENCE,
  SnowflakeGenerator,
  SnowflakeUnavailableError,
  composeSnowflake,
  snowflakeMs,
  snowflakeWorker,
} from './snowflake';

describe('SnowflakeGenerator', () => {
  it('decodes the layout example of the irc-binary spec (§2.7)', () => {
    const id = 0x0d102e51ffbeb000n;
    expect(id).toBe(941303251838349312n);
    expect(snowflakeMs(id)).toBe(1795393470455);
    expect(snowflakeWorker(id)).toBe(107);
    expect(id & 0xfffn).toBe(0n);
    expect(composeSnowflake(1795393470455, 107, 0)).toBe(id);
  });

  it('puts the clock, worker and sequence in their bits', () => {
    const g = new SnowflakeGenerator({ now: () => 1_700_000_000_000 });
    g.setWorker(5);
    const a = g.next();
    const b = g.next();
    expect(snowflakeMs(a)).toBe(1_700_000_000_000);
    expect(snowflakeWorker(a)).toBe(5);
    expect(b - a).toBe(1n);
    expect(a >> 63n).toBe(0n);
  });

  it('bounds every later id from below with horizon(), through clock steps back and worker changes', () => {
    let t = 1_700_000_000_000;
    const g = new SnowflakeGenerator({ now: () => t });
    g.setWorker(9);
    const check = (steps: (() => void)[]): void => {
      for (const step of steps) {
        const h = g.horizon();
        step();
        const later = [g.next(), g.next()];
        for (const id of later) expect(id >= h).toBe(true);
      }
    };
    check([
      () => undefined, // same millisecond, nothing issued yet in it
      () => undefined, // same millisecond, ids already issued in it
      () => (t += 3), // the clock moves on
      () => (t -= 5_000), // NTP steps back after the horizon was given
      () => g.setWorker(2), // a lower worker id in the same millisecond
    ]);
    // An idle generator's horizon follows the clock, so a reader is not held at the last id issued.
    const idle = new SnowflakeGenerator({ now: () => t });
    idle.setWorker(100);
    idle.next();
    t += 60_000;
    expect(idle.horizon()).toBe(composeSnowflake(t, 0, 0));
    // Issuing the whole sequence of a millisecond borrows the next one; the horizon says so.
    const full = new SnowflakeGenerator({ now: () => 1_700_000_000_000 });
    full.setWorker(127);
    for (let i = 0; i <= MAX_SEQUENCE; i++) full.next();
    const h = full.horizon();
    expect(h).toBe(composeSnowflake(1_700_000_000_001, 0, 0));
    expect(full.next()).toBe(composeSnowflake(1_700_000_000_001, 127, 0));
  });

  it('stays strictly increasing when the clock goes backwards', () => {
    let t = 1_700_000_000_000;
    const g = new SnowflakeGenerator({ now: () => t });
    g.setWorker(1);
    const ids: bigint[] = [g.next()];
    t -= 5_000; // NTP step back
    for (let i = 0; i < 10; i++) ids.push(g.next());
    t += 10_000;
    ids.push(g.next());
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(snowflakeMs(ids[1]!)).toBe(1_700_000_000_000); // kept the last millisecond
    expect(g.clockBackwards).toBe(10);
  });

  it('borrows the next millisecond when the sequence wraps', () => {
    const g = new SnowflakeGenerator({ now: () => 1_700_000_000_000 });
    g.setWorker(2);
    let prev = g.next();
    for (let i = 0; i < MAX_SEQUENCE; i++) {
      const id = g.next();
      expect(id > prev).toBe(true);
      prev = id;
    }
    expect(prev & 0xfffn).toBe(BigInt(MAX_SEQUENCE));
    const wrapped = g.next();
    expect(wrapped > prev).toBe(true);
    expect(snowflakeMs(wrapped)).toBe(1_700_000_000_001);
    expect(wrapped & 0xfffn).toBe(0n);
  });

  it('continues above a floor taken from the store after a restart with a slow clock', () => {
    const g = new SnowflakeGenerator({ now: () => 1_000 });
    g.setWorker(3, 2_000);
    const id = g.next();
    expect(snowflakeMs(id)).toBe(2_001);
  });

  it('refuses ids without a worker id, and after the lease is lost', () => {
    const g = new SnowflakeGenerator();
    expect(() => g.next()).toThrow(SnowflakeUnavailableError);
    g.setWorker(0);
    expect(g.next()).toBeGreaterThan(0n);
    g.clearWorker();
    expect(() => g.next()).toThrow(SnowflakeUnavailableError);
  });

  it('refuses ids while the lease is not known to be held (leaseValid), and resumes when it is', () => {
    let valid = true;
    const g = new SnowflakeGenerator({ leaseValid: () => valid });
    g.setWorker(3);
    const a = g.next();
    valid = false;
    expect(() => g.next()).toThrow('worker id lease not renewed in time');
    valid = true;
    expect(g.next()).toBeGreaterThan(a);
  });

  it('never returns 0', () => {
    const g = new SnowflakeGenerator({ now: () => 0 });
    g.setWorker(0);
    expect(g.next()).not.toBe(0n);
  });

  it('rejects worker ids outside 0..127', () => {
    const g = new SnowflakeGenerator();
    expect(() => g.setWorker(128)).toThrow(RangeError);
    expect(() => g.setWorker(-1)).toThrow(RangeError);
  });

  it('stays strictly increasing when the worker id changes to a lower one within a millisecond (regression)', () => {
    const t = 1_700_000_000_000;
    const g = new SnowflakeGenerator({ now: () => t });
    g.setWorker(100);
    const a = g.next();
    g.clearWorker();
    g.setWorker(3);
    const b = g.next();
    expect(b > a).toBe(true);
  });
});
