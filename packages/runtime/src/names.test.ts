import { foldName } from './names';

describe('foldName', () => {
  it('folds case and compatibility forms', () => {
    expect(foldName('Alice')).toBe('alice');
    expect(foldName('ＡＬＩＣＥ')).toBe('alice'); // fullwidth letters fold by NFKC
    expect(foldName('ﬁsh')).toBe('fish'); // ligature
    expect(foldName('Ǆ')).toBe(foldName('ǆ'));
  });
});
