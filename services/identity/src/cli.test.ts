import { parseArgs, parseDuration } from './cli';

describe('cli argument parsing', () => {
  it('splits args and flags', () => {
    const p = parseArgs(['user', 'ban', 'bob', '--reason', 'spam', '--for=1d', '--json']);
    expect(p.args).toEqual(['user', 'ban', 'bob']);
    expect(p.flags.get('reason')).toBe('spam');
    expect(p.flags.get('for')).toBe('1d');
    expect(p.flags.get('json')).toBe(true);
  });
  it('parses durations', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('permanent')).toBeUndefined();
    expect(() => parseDuration('soon')).toThrow(/bad duration/);
  });
});
