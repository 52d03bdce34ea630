import { seededRandom } from '@hubbub/testing';
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

/** A plain value from parseJson's result (numbers by their source text), to compare with JSON.parse's. */
function plain(v: unknown): unknown {
  if (v instanceof JsonNumber) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o;
  }
  return v;
}

describe('parseJson against JSON.parse (randomized)', () => {
  const r = seededRandom(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const TOKENS = [
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '"',
    '\\',
    'u',
    '0',
    '1',
    '-',
    '+',
    '.',
    'e',
    'E',
    ' ',
    '\n',
    '\t',
    'true',
    'false',
    'null',
    'tru',
    '"a"',
    '"\\u00e9"',
    '"\\ud83d"',
    '\u0000',
    '\u00a0',
    'é',
    '9',
  ];
  const VALID = [
    '{"type":"send_message","data":{"flow":[{"id":"1"}],"message":[{"text":"hi"}],"user":[{"uuid":"7","auth_id":"t"}]},"jsonapi":{"version":"1.0"}}',
    '[1,2.5,-3e-2,"x\\n",true,false,null,{"a":[]}]',
    '{"a":{"b":{"c":[0,-0,1E+2]}}}',
  ];

  let seen = { valid: 0, invalid: 0 };
  beforeEach(() => {
    seen = { valid: 0, invalid: 0 };
  });
  /** parseJson accepts `s` exactly when JSON.parse does, with the same value. */
  const same = (s: string): void => {
    let want: unknown = PARSE_FAILED;
    try {
      want = JSON.parse(s);
    } catch {
      /* invalid */
    }
    const got = parseJson(s);
    if (want === PARSE_FAILED) expect([s, got]).toEqual([s, PARSE_FAILED]);
    else expect([s, plain(got)]).toEqual([s, want]);
    seen[want === PARSE_FAILED ? 'invalid' : 'valid']++;
  };
  /** Both sides were exercised. */
  const bothSides = (): void => {
    expect(seen.valid).toBeGreaterThan(100);
    expect(seen.invalid).toBeGreaterThan(100);
  };

  it('accepts exactly what JSON.parse accepts, with the same values, on random token soups', () => {
    for (let n = 0; n < 5000; n++) {
      const s = Array.from({ length: 1 + Math.floor(r() * 12) }, () => pick(TOKENS)).join('');
      same(s);
    }
    bothSides();
  });

  it('accepts exactly what JSON.parse accepts on random edits of valid requests', () => {
    for (let n = 0; n < 5000; n++) {
      const base = pick(VALID);
      const chars = [...base];
      for (let e = 0; e < 1 + Math.floor(r() * 3); e++) {
        const at = Math.floor(r() * (chars.length + 1));
        const op = r();
        if (op < 0.33) chars.splice(at, 1);
        else if (op < 0.66) chars.splice(at, 0, pick(TOKENS));
        else chars[at] = pick(TOKENS);
      }
      const s = chars.join('');
      same(s);
    }
    bothSides();
  });
});
