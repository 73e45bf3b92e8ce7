// The outbox against a real SMTP server on 127.0.0.1, on SQLite and PostgreSQL: a queued mail
// arrives once; a server that is down at first gets it once it is up; a mail that keeps failing
// ends failed and visible; two workers on one database send each mail exactly once; a claim
// whose worker died (kill -9) is taken over once its lease ends; payloads are sealed at rest.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { createDb, type Db } from '../../src/db/client.js';
import { createOutbox, mailRetryDelayMs, type Outbox } from '../../src/mail/outbox.js';
import { listOutbox, sendTestMail } from '../../src/mail/service.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { createMailTransport } from '../../src/mail/transport.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';
import { readMime, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const SECRETS = [TEST_SECRET];

function mailSettings(smtpUrl: string | undefined, changes: Partial<Config['mail']> = {}): Config['mail'] {
  return { smtpUrl, from: '"Gatehouse" <no-reply@id.test>', timeout: 2, allowPlaintext: true, dir: '/nonexistent', pollInterval: 3600, lease: 60, maxAttempts: 5, retryDelayMs: 100, ...changes };
}

describe.each(await flavours())('the outbox on %s', (flavour) => {
  let db: MigratedDb;
  let smtp: TestSmtpServer | undefined;
  const outboxes: Outbox[] = [];
  const extraDbs: Db[] = [];
  let lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });

  function outboxOn(handle: Db, mail: Config['mail']): Outbox {
    const outbox = createOutbox({ config: { secrets: SECRETS, issuer: 'http://id.test', mail }, db: handle, logger });
    outboxes.push(outbox);
    return outbox;
  }
  const message = (n: number, to = `person${n}@example.test`) => ({ to, subject: `Mail ${n}`, text: `Text ${n} http://id.test/x?token=secret-${n}`, html: `<p>Html ${n}</p>` });

  beforeAll(async () => {
    db = await migratedDb(flavour);
  });
  afterEach(async () => {
    await Promise.all(outboxes.splice(0).map((outbox) => outbox.stop()));
    await smtp?.close();
    smtp = undefined;
    await db.prisma.outboxMessage.deleteMany();
    lines = [];
  });
  afterAll(async () => {
    await Promise.all(extraDbs.map((extra) => extra.close()));
    await db?.drop();
  });

  it('delivers a queued mail once, with its subject, text and HTML parts, and forgets its content once sent', async () => {
    smtp = await startSmtpServer();
    const outbox = outboxOn(db, mailSettings(smtp.url));
    const id = await db.prisma.$transaction((tx) => outbox.queueMail({ prisma: tx as unknown as Db['prisma'], flavour }, message(1), 'test'));
    const sealed = await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
    expect(sealed.payloadEncrypted).not.toContain('secret-1');
    expect(sealed.payloadEncrypted).not.toContain('Mail 1');

    outbox.start();
    const mail = await smtp.waitFor(1);
    await outbox.drain();
    expect(mail).toMatchObject({ to: ['person1@example.test'], subject: 'Mail 1', html: '<p>Html 1</p>' });
    expect(mail.text).toContain('Text 1');
    expect(mail.from).toBe('no-reply@id.test');
    const row = await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ state: 'sent', attempts: 1, payloadEncrypted: '', claimToken: null });
    expect(smtp.received).toHaveLength(1);
  });

  it('a mail rolled back with its transaction is never sent', async () => {
    smtp = await startSmtpServer();
    const outbox = outboxOn(db, mailSettings(smtp.url));
    await expect(
      db.prisma.$transaction(async (tx) => {
        await outbox.queueMail({ prisma: tx as unknown as Db['prisma'], flavour }, message(2), 'test');
        throw new Error('what caused it failed');
      }),
    ).rejects.toThrow('what caused it failed');
    outbox.start();
    await outbox.drain();
    expect(await db.prisma.outboxMessage.count()).toBe(0);
    expect(smtp.received).toHaveLength(0);
  });

  it('keeps retrying while the SMTP server is down, with growing pauses, and delivers once when it is up', async () => {
    smtp = await startSmtpServer({ listening: false });
    const outbox = outboxOn(db, mailSettings(smtp.url, { retryDelayMs: 100, maxAttempts: 10 }));
    const id = await outbox.queueMail(db, message(3), 'test');
    outbox.start();
    // Two failed attempts (at 0 and after 100 ms), then the server comes up. An attempt is counted
    // when it is claimed, before it connects: wait for the second one's failure, not its count.
    const failures = () => lines.filter((line) => line.msg === 'mail attempt failed').length;
    await expect.poll(failures, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    const failing = await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
    expect(failing.attempts).toBeGreaterThanOrEqual(2);
    expect(failing.state).toBe('pending');
    expect(failing.lastError).toMatch(/ECONNREFUSED/);
    await smtp.listen();
    await smtp.waitFor(1);
    await outbox.drain();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(smtp.received).toHaveLength(1);
    expect(await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'sent' });
    expect(mailRetryDelayMs(100, 1)).toBe(100);
    expect(mailRetryDelayMs(100, 3)).toBe(400);
    expect(mailRetryDelayMs(30_000, 20)).toBe(3_600_000);
  });

  it('marks a mail failed after its last attempt: listed with why, logged once as an error, never sent again', async () => {
    smtp = await startSmtpServer({ listening: false });
    const outbox = outboxOn(db, mailSettings(smtp.url, { retryDelayMs: 20, maxAttempts: 3 }));
    const id = await outbox.queueMail(db, message(4), 'password_reset');
    outbox.start();
    await outbox.drain();
    const list = await listOutbox({ db, secrets: SECRETS }, { state: 'failed' });
    expect(list.counts).toEqual({ pending: 0, sent: 0, failed: 1 });
    expect(list.messages).toEqual([expect.objectContaining({ id, kind: 'mail', topic: 'password_reset', recipient: 'person4@example.test', state: 'failed', attempts: 3, max_attempts: 3, last_error: expect.stringMatching(/ECONNREFUSED/) })]);
    const errors = lines.filter((line) => line.level === 50);
    expect(errors).toEqual([expect.objectContaining({ msg: 'mail failed, giving up', outbox_id: id, attempt: 3 })]);
    expect(JSON.stringify(lines)).not.toContain('secret-4');
    await smtp.listen();
    outbox.wake();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(smtp.received).toHaveLength(0);
  });

  it('does not retry a mail the server refuses for good (5xx)', async () => {
    smtp = await startSmtpServer({ user: 'gatehouse', password: 'right-password' });
    const outbox = outboxOn(db, mailSettings(smtp.url.replace('right-password', 'wrong-password')));
    await outbox.queueMail(db, message(5), 'test');
    outbox.start();
    await outbox.drain();
    const [row] = (await listOutbox({ db, secrets: SECRETS }, {})).messages;
    expect(row).toMatchObject({ state: 'failed', attempts: 1 });
    expect(JSON.stringify(lines)).not.toContain('wrong-password');
  });

  it('two workers on one database send each of many mails exactly once', async () => {
    smtp = await startSmtpServer();
    const second = await createDb(db);
    extraDbs.push(second);
    const [one, two] = [outboxOn(db, mailSettings(smtp.url)), outboxOn(second, mailSettings(smtp.url))];
    for (let n = 0; n < 24; n++) await one.queueMail(db, message(100 + n), 'test');
    one.start();
    two.start();
    await smtp.waitFor(24);
    await Promise.all([one.drain(), two.drain()]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const subjects = smtp.received.map((mail) => mail.subject).sort();
    expect(subjects).toHaveLength(24);
    expect(new Set(subjects).size).toBe(24);
    const delivered = lines.filter((line) => line.msg === 'mail delivered');
    expect(new Set(delivered.map((line) => line.outbox_id)).size).toBe(24);
  });

  it('a claim whose worker died is taken over once its lease has ended, and the mail is sent once', async () => {
    smtp = await startSmtpServer();
    const store = createOutboxStore(db, SECRETS);
    const id = await store.enqueue({ kind: 'mail', topic: 'test', recipient: 'person6@example.test', payload: message(6), maxAttempts: 5 });
    // A worker claims it for one second and is killed before sending.
    const claimed = await store.claimNext(new Date(), 1);
    expect(claimed?.id).toBe(id);
    expect(await store.claimNext(new Date(), 1)).toBeNull();

    const outbox = outboxOn(db, mailSettings(smtp.url, { lease: 1 }));
    outbox.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(smtp.received).toHaveLength(0);
    await outbox.drain();
    expect(smtp.received).toHaveLength(1);
    expect(await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'sent', attempts: 2 });
    // The dead worker's claim no longer counts.
    expect(await store.markSent(claimed!)).toBe(false);
  });

  it('`mail test` reports what the server answered; with no SMTP_URL the mail is written as an .eml file', async () => {
    smtp = await startSmtpServer();
    const transport = createMailTransport(mailSettings(smtp.url), { issuer: 'http://id.test' });
    const result = await sendTestMail(transport, { to: 'admin@example.test' }, 'Gatehouse');
    transport.close();
    expect(result).toMatchObject({ to: 'admin@example.test', via: `smtp://127.0.0.1:${smtp.port}`, response: expect.stringMatching(/^250/) });
    expect((await smtp.waitFor(1)).subject).toBe('Gatehouse: test mail');
    await expect(sendTestMail(transport, { to: 'not an address' }, 'Gatehouse')).rejects.toThrow(/must be an email address/);

    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mail-'));
    const printed: string[] = [];
    const files = createMailTransport(mailSettings(undefined, { dir }), { issuer: 'http://id.test', print: (line) => printed.push(line) });
    const written = await files.send(message(7));
    const [file] = readdirSync(dir);
    expect(file).toMatch(/\.eml$/);
    expect(written.response).toBe(`written to ${join(dir, file as string)}`);
    expect(readMime(readFileSync(join(dir, file as string), 'utf8'))).toMatchObject({ subject: 'Mail 7', html: '<p>Html 7</p>' });
    expect(printed.join('\n')).toContain('http://id.test/x?token=secret-7');
    rmSync(dir, { recursive: true, force: true });
  });
});
