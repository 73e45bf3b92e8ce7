// What a registered API (an RFC 8707 resource) may be, as the seed file gives it.
import { z } from 'zod';
import { list, required, SCOPE_TOKEN, text } from '../core/fields.js';

/** An API that access tokens can be issued for (RFC 8707 resource indicator). */
export const ResourceEntry = z.strictObject(
  {
    identifier: z
      .string({ error: required('must be an absolute URI') })
      .refine((v) => URL.canParse(v) && !v.includes('#'), 'must be an absolute URI without a fragment (e.g. https://api.example.com)'),
    name: text().optional(),
    scopes: list(z.string({ error: 'must be a string' }).regex(SCOPE_TOKEN, 'must be a scope name without spaces'), 'scope', { isRequired: true }),
    access_token_format: z.enum(['jwt', 'opaque'], { error: 'must be jwt or opaque' }).default('jwt'),
    access_token_ttl: z.number({ error: 'must be a number of seconds' }).int('must be a whole number of seconds').min(60, 'must be at least 60 seconds').max(86_400, 'must be at most 86400 seconds (a day)').default(3600),
    introspection_clients: list(z.string({ error: 'must be a string' }).min(1), 'client_id').optional(),
  },
  { error: 'must be an object' },
);
