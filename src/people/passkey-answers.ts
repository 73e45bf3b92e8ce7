// What a page's script posts for a passkey ceremony (@simplewebauthn/browser's JSON), parsed at
// the edge before @simplewebauthn/server checks the rest (passkeys.ts).
import { z } from 'zod';

/**
 * The form field a page's script posts a ceremony's answer in: @simplewebauthn/browser's JSON, as
 * text. Anything that is not JSON becomes undefined, refused further on as malformed.
 */
export const PASSKEY_RESPONSE_FIELD = z
  .string()
  .max(12_000)
  .transform((text): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  })
  .catch(undefined);

const BASE64URL = z.string().min(1).max(16_384).regex(/^[A-Za-z0-9_-]+$/);

/** What @simplewebauthn/browser sends back, parsed at the edge (the library checks the rest). */
export const AssertionSchema = z.object({
  id: BASE64URL.max(1024),
  rawId: BASE64URL.max(1024),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: BASE64URL,
    authenticatorData: BASE64URL,
    signature: BASE64URL,
    userHandle: BASE64URL.max(256).optional(),
  }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});

export const AttestationSchema = z.object({
  id: BASE64URL.max(1024),
  rawId: BASE64URL.max(1024),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: BASE64URL,
    attestationObject: BASE64URL,
    transports: z.array(z.string().max(32)).max(10).optional(),
  }).loose(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
});

const ClientDataSchema = z.object({ challenge: BASE64URL.max(128) }).loose();

/** The challenge an answer claims to answer, read from its clientDataJSON; null when unreadable. */
export function challengeOf(clientDataJSON: string): string | null {
  try {
    const parsed = ClientDataSchema.safeParse(JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data.challenge : null;
  } catch {
    return null;
  }
}

