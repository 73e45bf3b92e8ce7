// The password policy: long enough, within what bcrypt reads, not common, not the email; and the
// seed file applies it with the configured minimum, naming each bad password by entry.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { describe, expect, it } from 'vitest';
import { isCommonPassword } from '../../src/people/common-passwords.js';
import { BCRYPT_MAX_PASSWORD_BYTES, checkPassword, DEFAULT_PASSWORD_MIN_LENGTH } from '../../src/people/password-policy.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { runSeedScript } from '../helpers/commands.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';

const POLICY = { minLength: 10 };
const COMMON = 'is one of the most commonly used passwords, which attackers try first; choose another (several unrelated words make a good one)';

describe('checkPassword', () => {
  it('accepts a long, uncommon password', () => {
    expect(checkPassword('correct horse battery staple', POLICY)).toBeNull();
    expect(checkPassword('Tr0ub4dour&3-extended', { ...POLICY, email: 'alice@example.com' })).toBeNull();
  });

  it('counts characters, not bytes or UTF-16 units, against the minimum', () => {
    expect(checkPassword('abcdefgh1', POLICY)).toBe('must be at least 10 characters');
    expect(checkPassword('', POLICY)).toBe('must be at least 10 characters');
    expect(checkPassword('sixteen chars ok', { minLength: 17 })).toBe('must be at least 17 characters');
    // Nine emoji are 18 UTF-16 units and 36 bytes, but nine characters.
    expect(checkPassword('🦊🐙🦉🐝🦋🐢🦀🐬🦔', POLICY)).toBe('must be at least 10 characters');
    expect(checkPassword('🦊🐙🦉🐝🦋🐢🦀🐬🦔🐌', POLICY)).toBeNull();
  });

  it('refuses more than 72 UTF-8 bytes instead of letting bcrypt silently truncate', async () => {
    // Why: bcrypt ignores everything after byte 72, so both of these would verify.
    const hash = await bcrypt.hash(`${'k'.repeat(72)}first`, 4);
    expect(await bcrypt.compare(`${'k'.repeat(72)}second`, hash)).toBe(true);

    expect(BCRYPT_MAX_PASSWORD_BYTES).toBe(72);
    const words = 'eleven char'.repeat(7); // 77 bytes
    expect(checkPassword(words.slice(0, 72), POLICY)).toBeNull();
    const tooLong = checkPassword(words.slice(0, 73), POLICY);
    expect(tooLong).toMatch(/^must be at most 72 bytes in UTF-8 .*bcrypt would silently ignore the rest$/);
    // 36 characters of "é" are 72 bytes; 37 are 74.
    expect(checkPassword('éà'.repeat(18), POLICY)).toBeNull();
    expect(checkPassword(`${'éà'.repeat(18)}é`, POLICY)).toBe(tooLong);
    // 19 four-byte emoji (76 bytes) are only 19 characters.
    expect(checkPassword('🦊'.repeat(9) + '🐙'.repeat(10), POLICY)).toBe(tooLong);
  });

  it('refuses control characters', () => {
    for (const c of ['\u0000', '\n', '\r', '\t', '\u001b', '\u007f', '\u0085']) {
      expect(checkPassword(`a long pass${c}phrase`, POLICY)).toBe('must not contain control characters (line breaks, tabs, NUL…)');
    }
  });

  it.each(['password123456', 'Password123456', 'PASSWORD1234', 'qwertyuiop', '1234567890', '1q2w3e4r5t', 'iloveyou123', 'michael1987', 'Jennifer2001', 'football123', 'letmein12345', 'zaq12wsxcde3', 'abcdefghij', 'qwerty123456', 'p@ssw0rd123', 'superman1985', 'aaaaaaaaaaaa', '@@@@@@@@@@@@'])(
    'refuses the common password %s, in any letter case',
    (password) => {
      expect(checkPassword(password, POLICY)).toBe(COMMON);
    },
  );

  it('folds look-alike full-width letters before comparing with the list', () => {
    expect(checkPassword('ｐａｓｓｗｏｒｄ１２３４', POLICY)).toBe(COMMON);
  });

  it('refuses the email address or its part before the @, in any letter case', () => {
    const email = 'Margaret.Hamilton@example.com';
    const message = 'must not be the email address or its part before the @';
    expect(checkPassword('margaret.hamilton@example.com', { ...POLICY, email })).toBe(message);
    expect(checkPassword('MARGARET.HAMILTON', { ...POLICY, email })).toBe(message);
    expect(checkPassword('margaret.hamilton!', { ...POLICY, email })).toBeNull();
    // Without an email the local part is just a password.
    expect(checkPassword('margaret.hamilton', POLICY)).toBeNull();
  });

  it('reports the first problem only, length first', () => {
    expect(checkPassword('password', { minLength: 10, email: 'password@example.com' })).toBe('must be at least 10 characters');
    expect(checkPassword('password', { minLength: 8, email: 'password@example.com' })).toBe('must not be the email address or its part before the @');
    expect(checkPassword('password', { minLength: 8 })).toBe(COMMON);
  });

  it('knows the classics and the word-plus-ending pattern, and not random passphrases', () => {
    for (const password of ['123456', 'password', 'qwerty', 'iloveyou', '111111', 'abc123', 'admin', 'letmein', 'monkey', 'dragon', '1qaz2wsx', 'asdfghjkl', 'trustno1']) {
      expect(isCommonPassword(password), password).toBe(true);
    }
    for (const password of ['summer2024', 'dragon!', 'monkey123', '1password', 'monkeymonkey', 'liverpool1']) {
      expect(isCommonPassword(password), password).toBe(true);
    }
    for (const password of ['correct horse battery staple', 'x7#kq!zp0w', 'dragonfly-orbit-42']) {
      expect(isCommonPassword(password), password).toBe(false);
    }
    expect(DEFAULT_PASSWORD_MIN_LENGTH).toBe(10);
  });
});

describe('the seed file applies the password policy', () => {
  const user = (email: string, password: unknown) => ({ email, password });
  const file = {
    users: [
      user('ann@example.com', 'a perfectly fine passphrase'),
      user('ben@example.com', 'password123456'),
      user('cat@example.com', 'short1'),
      user('dee@example.com', 'x'.repeat(73) + 'yz'),
      user('eve.online@example.com', 'Eve.Online'),
      user('fay@example.com', 42),
    ],
  };

  it('names each bad password by entry index and field, with the reason', () => {
    const result = parseSeedFile(file);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([
      `users[1].password: ${COMMON}`,
      'users[2].password: must be at least 10 characters',
      expect.stringMatching(/^users\[3\]\.password: must be at most 72 bytes in UTF-8/),
      'users[4].password: must not be the email address or its part before the @',
      'users[5].password: must be a string',
    ]);
  });

  it('takes the minimum length from its options (PASSWORD_MIN_LENGTH)', () => {
    const one = (password: string, passwordMinLength?: number) => parseSeedFile({ users: [user('ann@example.com', password)] }, { passwordMinLength });
    expect(one('fine phrase').ok).toBe(true);
    expect(one('fine phrase', 20)).toEqual({ ok: false, problems: ['users[0].password: must be at least 20 characters'] });
    expect(one('a fine phrase that is long enough', 20).ok).toBe(true);
  });

  it('makes `prisma db seed` exit 1 with PASSWORD_MIN_LENGTH applied, writing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-password-'));
    try {
      const seedFile = join(dir, 'seed.json');
      writeFileSync(seedFile, JSON.stringify({ users: [user('ann@example.com', 'a perfectly fine passphrase'), user('ben@example.com', 'only fifteen ch')] }));
      const result = await runSeedScript({ DATABASE_URL: `file:${join(dir, 'gatehouse.db')}`, SEED_FILE: seedFile, SECRETS: TEST_SECRET, BCRYPT_COST: '4', PASSWORD_MIN_LENGTH: '16' });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('has 1 problem; nothing was written:\n  - users[1].password: must be at least 16 characters\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
