import { LogGate } from './log-gate';

describe('LogGate', () => {
  it('lets one line through per interval and counts the ones left out', () => {
    let now = 1_000;
    const g = new LogGate(10_000, () => now);
    expect(g.due()).toBe(0);
    expect(g.due()).toBeUndefined();
    now += 9_999;
    expect(g.due()).toBeUndefined();
    now += 1;
    expect(g.due()).toBe(2);
    expect(g.due()).toBeUndefined();
  });
  it('with interval 0 every call is due', () => {
    const g = new LogGate(0);
    expect([g.due(), g.due()]).toEqual([0, 0]);
  });
});
