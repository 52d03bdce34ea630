import { StampedWrites } from './stamped-writes';

describe('StampedWrites', () => {
  it('puts the time horizon at the lowest stamp in flight, else the clock, and waits for what came before', async () => {
    let now = 1_000;
    const w = new StampedWrites(() => now);
    let finish!: () => void;
    const write = w.track(new Promise<void>((r) => (finish = r)), 990);
    now = 1_050;
    expect(w.size).toBe(1);
    expect(w.timeHorizon()).toBe(990);
    expect(await w.settledWithin(5)).toBe(false);
    let settled = false;
    const waiting = w.settled().then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    finish();
    await write;
    await waiting;
    expect(w.size).toBe(0);
    expect(w.timeHorizon()).toBe(1_050);
    expect(await w.settledWithin(5)).toBe(true);
  });

  it('counts failed writes as settled', async () => {
    const w = new StampedWrites(() => 5);
    await expect(w.track(Promise.reject(new Error('no')), 5)).rejects.toThrow('no');
    await w.settled();
    expect(w.size).toBe(0);
  });

  it('never stamps below a horizon handed out, also when the clock steps back', () => {
    let now = 10_000;
    const w = new StampedWrites(() => now);
    expect(w.timeHorizon()).toBe(10_000);
    now = 8_000;
    expect(w.stampNow()).toBe(10_000);
    now = 12_000;
    expect(w.stampNow()).toBe(12_000);
  });
});
