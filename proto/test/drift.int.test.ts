/**
 * The drift check (scripts/check-proto) must pass on the committed tree and fail after a hand edit
 * of generated code.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');

function check(dir: string): { ok: boolean; out: string } {
  try {
    const out = execFileSync('bash', [join(root, 'scripts/check-proto'), dir], { encoding: 'utf8', stdio: 'pipe' });
    return { ok: true, out };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('scripts/check-proto', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hubbub-proto-'));
    cpSync(join(root, 'proto'), dir, {
      recursive: true,
      filter: (src) => !src.includes('node_modules') && !src.includes(`${join(root, 'proto')}/dist`),
    });
    symlinkSync(join(root, 'proto/node_modules'), join(dir, 'node_modules'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes on the committed generated code', () => {
    const r = check(dir);
    expect(r.out).toContain('generated code up to date');
    expect(r.ok).toBe(true);
  });

  it('fails after a hand edit of generated code', () => {
    appendFileSync(join(dir, 'gen/grpc/health/v1/health.ts'), '\n// hand edit\n');
    const r = check(dir);
    expect(r.ok).toBe(false);
    expect(r.out).toContain('proto/gen is out of date');
  });
});
