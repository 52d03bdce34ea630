import { JsonNumber, PARSE_FAILED, parseJson } from './json-parse';

describe('parseJson', () => {
  it('parses every JSON kind and keeps number source text', () => {
    const v = parseJson(' {"a": [1, -0, 2.5e3, "x\\u00e9\\n", true, false, null], "b": {}} ');
    expect(v).not.toBe(PARSE_FAILED);
    const o = v as Record<string, unknown>;
    const a = o['a'] as unknown[];
    expect(a[0]).toEqual(new JsonNumber('1', true));
    expect(a[1]).toEqual(new JsonNumber('-0', true));
    expect(a[2]).toEqual(new JsonNumber('2.5e3', false));
    expect(a.slice(3)).toEqual(['xé\n', true, false, null]);
    expect(o['b']).toEqual({});
  });

  it('agrees with JSON.parse on what is valid', () => {
    const samples = [
      '{}',
      '[]',
      '""',
      '"\\/"',
      '0',
      '-1',
      '1e5',
      '1E+5',
      '[1,]',
      '{"a":1,}',
      '01',
      '1.',
      '.5',
      '+1',
      'NaN',
      'Infinity',
      '-Infinity',
      '[1 2]',
      '{"a" 1}',
      '{a: 1}',
      "'x'",
      '"\\x"',
      '"\\u12"',
      '"a\tb"',
      'tru',
      'nul',
      '[[[]]]',
      '{"a":{"b":[{"c":null}]}}',
      '  ',
      '[1]x',
      '"\\ud83d\\ude00"',
      '{"__proto__": 1}',
      '\u00a0{}',
    ];
    for (const s of samples) {
      let ok = true;
      try {
        JSON.parse(s);
      } catch {
        ok = false;
      }
      expect([s, parseJson(s) !== PARSE_FAILED]).toEqual([s, ok]);
    }
  });

  it('keeps a __proto__ key as data and the last of repeated keys', () => {
    const v = parseJson('{"__proto__": {"x": 1}, "k": 1, "k": 2}') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__', 'k']);
    expect(v['k']).toEqual(new JsonNumber('2', true));
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('refuses nesting deeper than the limit without overflowing the stack', () => {
    expect(parseJson('['.repeat(100_000) + ']'.repeat(100_000))).toBe(PARSE_FAILED);
    expect(parseJson('['.repeat(500) + ']'.repeat(500))).not.toBe(PARSE_FAILED);
  });
});
