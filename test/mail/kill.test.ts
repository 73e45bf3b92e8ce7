// kill -9 between claiming a mail and sending it loses nothing: a real server process claims a
// queued mail and hangs in the SMTP conversation; it is killed with SIGKILL; another process on
// the same database takes the mail over once the lease has ended and delivers it, once.
import { createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';
import { freePort } from '../helpers/ports.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { startSmtpServer } from '../helpers/smtp.js';

describe.each(await flavours())('an instance killed mid-send on %s', (flavour) => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const stop = (server: ServerProcess) => async () => {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await server.exited;
  };

  it('leaves the mail to the next instance, which sends it exactly once', { timeout: 120_000 }, async () => {
    const database: TestDatabase = await createTestDatabase(flavour);
    cleanups.push(() => database.drop());
    await migrate(database.config);
    const db = await createDb(database.config);
    cleanups.push(() => db.close());
    const store = createOutboxStore(db, [TEST_SECRET]);
    const id = await store.enqueue({ kind: 'mail', topic: 'test', recipient: 'kept@example.com', payload: { to: 'kept@example.com', subject: 'Survives kill -9', html: '<p>x</p>', text: 'x' }, maxAttempts: 5 });

    // An SMTP server that accepts the connection and never says hello.
    const sockets: Socket[] = [];
    const hanging = createServer((socket) => void sockets.push(socket));
    const hangingPort = await freePort();
    await new Promise<void>((resolve) => hanging.listen(hangingPort, '127.0.0.1', resolve));
    cleanups.push(() => {
      sockets.forEach((socket) => socket.destroy());
      return new Promise((resolve) => hanging.close(resolve));
    });

    const common = { DATABASE_URL: database.config.url, SMTP_ALLOW_PLAINTEXT: 'true', OUTBOX_LEASE: '3s', OUTBOX_POLL_INTERVAL: '1s', SMTP_TIMEOUT: '60s' };
    const first = spawnServer({ ...common, PORT: String(await freePort()), SMTP_URL: `smtp://127.0.0.1:${hangingPort}` });
    cleanups.push(stop(first));
    await expect.poll(() => sockets.length, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
    const claimed = await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
    expect(claimed).toMatchObject({ state: 'pending', attempts: 1, claimToken: expect.any(String) });
    first.child.kill('SIGKILL');
    expect((await first.exited).code).toBeNull();

    const smtp = await startSmtpServer();
    cleanups.push(() => smtp.close());
    const second = spawnServer({ ...common, PORT: String(await freePort()), SMTP_URL: smtp.url });
    cleanups.push(stop(second));
    const mail = await smtp.waitFor(1, 60_000);
    expect(mail.subject).toBe('Survives kill -9');
    await expect.poll(async () => (await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } })).state, { timeout: 10_000 }).toBe('sent');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(smtp.received).toHaveLength(1);
    expect(await db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'sent', attempts: 2, payloadEncrypted: '' });
  });
});
