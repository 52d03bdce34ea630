import { Batcher, BatcherClosedError } from './batcher';

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Batcher', () => {
  it('gathers concurrent submissions into one batch and answers each in order', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>({
      windowMs: 1,
      maxItems: 100,
      run: async (xs) => {
        batches.push([...xs]);
        return xs.map((x) => x * 2);
      },
    });
    const rs = await Promise.all([1, 2, 3].map((x) => b.submit(x)));
    expect(rs).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('runs one batch at a time and forms the next batch from what arrived meanwhile', async () => {
    const gate = deferred();
    const batches: number[][] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const b = new Batcher<number, number>({
      windowMs: 0,
      maxItems: 100,
      run: async (xs) => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        batches.push([...xs]);
        if (xs[0] === 1) await gate.promise;
        concurrent--;
        return xs;
      },
    });
    const p1 = b.submit(1);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const p2 = b.submit(2);
    const p3 = b.submit(3);
    gate.resolve();
    await Promise.all([p1, p2, p3]);
    expect(batches).toEqual([[1], [2, 3]]);
    expect(maxConcurrent).toBe(1);
  });

  it('splits at maxItems and keeps submitMany items consecutive and in order', async () => {
    const batches: string[][] = [];
    const b = new Batcher<string, string>({
      windowMs: 50,
      maxItems: 3,
      run: async (xs) => {
        batches.push([...xs]);
        return xs;
      },
    });
    const single = b.submit('x');
    const many = b.submitMany(['a', 'b', 'c', 'd']);
    expect(await many).toEqual(['a', 'b', 'c', 'd']);
    await single;
    expect(batches.flat()).toEqual(['x', 'a', 'b', 'c', 'd']);
    expect(batches.every((bt) => bt.length <= 3)).toBe(true);
  });

  it('cuts a batch at a submission boundary so a group that fits is never split', async () => {
    const batches: string[][] = [];
    const b = new Batcher<string, string>({
      windowMs: 50,
      maxItems: 4,
      run: async (xs) => {
        batches.push([...xs]);
        return xs;
      },
    });
    const ps = [b.submitMany(['a1', 'a2']), b.submit('x'), b.submitMany(['b1', 'b2', 'b3']), b.submit('y')];
    await Promise.all(ps);
    expect(batches).toEqual([
      ['a1', 'a2', 'x'],
      ['b1', 'b2', 'b3', 'y'],
    ]);
  });

  it('rejects every item of a failed batch and keeps serving later ones', async () => {
    let fail = true;
    const b = new Batcher<number, number>({
      windowMs: 0,
      maxItems: 10,
      run: async (xs) => {
        if (fail) {
          fail = false;
          throw new Error('db down');
        }
        return xs;
      },
    });
    const rs = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(rs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(b.submit(3)).resolves.toBe(3);
  });

  it('rejects a run that returns the wrong number of results', async () => {
    const b = new Batcher<number, number>({ windowMs: 0, maxItems: 10, run: async () => [] });
    await expect(b.submit(1)).rejects.toThrow(/returned 0 of 1/);
  });

  it('drains on close and refuses later submissions', async () => {
    const ran: number[] = [];
    const b = new Batcher<number, number>({
      windowMs: 5,
      maxItems: 10,
      run: async (xs) => {
        ran.push(...xs);
        return xs;
      },
    });
    const p = b.submit(1);
    await b.close();
    expect(ran).toEqual([1]);
    await expect(p).resolves.toBe(1);
    await expect(b.submit(2)).rejects.toBeInstanceOf(BatcherClosedError);
    await expect(b.submitMany([3])).rejects.toBeInstanceOf(BatcherClosedError);
  });

  it('starts batches in order and runs at most maxInFlight at once', async () => {
    const started: number[][] = [];
    const gates: (() => void)[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const b = new Batcher<number, number>({
      windowMs: 0,
      maxItems: 2,
      maxInFlight: 2,
      run: async (xs) => {
        started.push([...xs]);
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await new Promise<void>((r) => gates.push(r));
        concurrent--;
        return xs;
      },
    });
    const all = b.submitMany([1, 2, 3, 4, 5, 6]);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([
      [1, 2],
      [3, 4],
    ]);
    gates[1]!(); // the second finishes first
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    gates[0]!();
    gates[2]!();
    expect(await all).toEqual([1, 2, 3, 4, 5, 6]);
    expect(maxConcurrent).toBe(2);
    await b.close();
  });
});
