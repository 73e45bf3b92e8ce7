// What the outbox holds and shows: a mail as it is sent, and the views the admin API and the
// CLI list (no payload: it holds links that are secrets).
import { z } from 'zod';
import { wholeNumber } from '../core/fields.js';

export const OUTBOX_KINDS = ['mail', 'backchannel_logout'] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];

export const OUTBOX_STATES = ['pending', 'sent', 'failed'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/** A mail, composed when it is queued (mail/compose.ts says how): the worker only sends it. */
export const MailMessage = z.object({
  to: z.string().min(3).max(320),
  subject: z.string().min(1).max(300),
  html: z.string(),
  text: z.string(),
});
export type MailMessage = z.infer<typeof MailMessage>;

export const OutboxQuery = z
  .strictObject(
    {
      state: z.enum(OUTBOX_STATES, { error: `must be one of ${OUTBOX_STATES.join(', ')}` }).optional(),
      limit: wholeNumber(1, 500, 100),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'OutboxQuery' });

export const OutboxMessageView = z
  .object({
    id: z.string(),
    kind: z.enum(OUTBOX_KINDS),
    topic: z.string().describe('What it is: password_reset, test, logout, …'),
    recipient: z.string().describe('An email address (mail) or a client id (back-channel logout).'),
    state: z.enum(OUTBOX_STATES),
    attempts: z.number().int(),
    max_attempts: z.number().int(),
    next_attempt_at: z.iso.datetime().nullable(),
    last_error: z.string().nullable(),
    created_at: z.iso.datetime(),
    finished_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'OutboxMessage' });
export type OutboxMessageView = z.infer<typeof OutboxMessageView>;

export const OutboxList = z
  .object({
    messages: z.array(OutboxMessageView),
    counts: z.object({ pending: z.number().int(), sent: z.number().int(), failed: z.number().int() }).describe('Every message in the outbox, by state.'),
  })
  .meta({ id: 'OutboxList' });
export type OutboxList = z.infer<typeof OutboxList>;

export const TestMailInput = z.strictObject({ to: z.email({ error: 'must be an email address' }).max(254) }, { error: 'must be an object' }).meta({ id: 'TestMail' });

export const TestMailResult = z
  .object({ to: z.string(), via: z.string().describe('smtp://host:port, or the folder mails are written to'), response: z.string().describe("What the server answered."), message_id: z.string() })
  .meta({ id: 'TestMailResult' });
export type TestMailResult = z.infer<typeof TestMailResult>;
