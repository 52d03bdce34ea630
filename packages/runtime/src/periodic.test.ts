import { periodicTask } from './periodic';

describe('periodicTask', () => {
  it('runs on its interval and on trigger, never twice at once, and stops', async () => {
    let runs = 0;
    let release!: () => void;
    const t = periodicTask(0, () => {
      runs++;
      return new Promise<void>((r) => (release = r));
    });
    t.trigger();
    t.trigger(); // dropped: the first is still running
    expect(runs).toBe(1);
    release();
    await new Promise((r) => setImmediate(r));
    t.trigger();
    expect(runs).toBe(2);
    release();
    t.stop();

    let ticks = 0;
    const p = periodicTask(5, async () => void ticks++);
    await new Promise((r) => setTimeout(r, 40));
    p.stop();
    const seen = ticks;
    expect(seen).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(ticks).toBe(seen);
  });

  it('keeps going after a failed round', async () => {
    let runs = 0;
    const t = periodicTask(0, async () => {
      runs++;
      throw new Error('down');
    });
    t.trigger();
    await new Promise((r) => setImmediate(r));
    t.trigger();
    expect(runs).toBe(2);
    t.stop();
  });
});
