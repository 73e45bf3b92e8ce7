// Field schemas (zod) shared by the nouns' own schemas: URLs, texts, lists, scope names, and the
// messages every input gets when it is missing or wrong.
import { z } from 'zod';

/** RFC 6749 §3.3 scope-token characters. */
export const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export const oneOf = (values: readonly string[]) => `must be one of ${values.join(', ')}`;
/** For a required field's type check: says so when the field is missing altogether. */
export const required = (message: string) => (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : message);

export function isHttpUrl(value: string, { fragment }: { fragment: boolean }): boolean {
  const url = URL.canParse(value) ? new URL(value) : null;
  return !!url && (url.protocol === 'https:' || url.protocol === 'http:') && !!url.hostname && (fragment || !value.includes('#'));
}

export const httpUrl = (message = 'must be an absolute http(s) URL') =>
  z.string({ error: message }).refine((v) => isHttpUrl(v, { fragment: true }), message);

export const redirectUrl = () => {
  const message = 'must be an absolute http(s) URL without a fragment';
  return z.string({ error: message }).refine((v) => isHttpUrl(v, { fragment: false }), message);
};

export const text = (max = 255) => z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

/** What a group's name may be (groups/schema.ts; a client's allowed_groups): tokens carry it, so it is short, exact and case-sensitive. */
export const GROUP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
export const GROUP_NAME_RULE = '1 to 64 characters: letters, digits and . _ : @ -, starting with a letter or digit';
export const groupName = () =>
  z
    .string({ error: required('must be a string') })
    .min(1, `must be ${GROUP_NAME_RULE}`)
    .max(64, `must be ${GROUP_NAME_RULE}`)
    .regex(GROUP_NAME_PATTERN, `must be ${GROUP_NAME_RULE}`);

/** A non-empty list of distinct values. */
export const list = <T extends z.ZodType<string>>(item: T, what: string, { isRequired = false } = {}) =>
  z
    .array(item, { error: isRequired ? required(`must be an array of ${what}s`) : `must be an array of ${what}s` })
    .min(1, `must list at least one ${what}`)
    .refine((values) => new Set(values).size === values.length, 'must not repeat a value');

/** A whole number from a query string (text) or JSON, within [min, max]; `fallback` when absent. */
export const wholeNumber = (min: number, max: number, fallback: number) =>
  z
    .union([z.number(), z.string().regex(/^\d+$/, `must be a whole number from ${min} to ${max}`).transform(Number)], { error: `must be a whole number from ${min} to ${max}` })
    .pipe(z.number().int(`must be a whole number from ${min} to ${max}`).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
    .default(fallback);
