import { foldName, hasInvisibleCharacter } from './names';

describe('foldName', () => {
  it('folds case and compatibility forms', () => {
    expect(foldName('Alice')).toBe('alice');
    expect(foldName('ＡＬＩＣＥ')).toBe('alice'); // fullwidth letters fold by NFKC
    expect(foldName('ﬁsh')).toBe('fish'); // ligature
    expect(foldName('Ǆ')).toBe(foldName('ǆ'));
  });
});

describe('hasInvisibleCharacter', () => {
  it.each([
    'alice\u200b',
    '\u200balice',
    'al\u00adice',
    'alice\u2060',
    '\ufeffalice',
    'al\u200dice',
    '\u3164',
    'a\u115fb',
  ])('finds one in %j', (n) => expect(hasInvisibleCharacter(n)).toBe(true));
  it.each(['alice', 'Zoë', 'a b', 'ＡＬＩＣＥ', '😀', '日本語'])('finds none in %j', (n) =>
    expect(hasInvisibleCharacter(n)).toBe(false),
  );
});
