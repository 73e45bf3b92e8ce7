// What a client's metadata may be (RFC 7591 as Gatehouse accepts it): the seed file, the admin
// API and the CLI validate with these, and the engine checks the result again.
import { z } from 'zod';
import { groupName, httpUrl, isHttpUrl, list, oneOf, redirectUrl, required, SCOPE, text } from '../core/fields.js';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code'] as const;
export const RESPONSE_TYPES = ['code', 'id_token', 'code id_token', 'none'] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'] as const;
export const SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA', 'HS256', 'HS384', 'HS512'] as const;
/** RFC 7591 §2: a client without token_endpoint_auth_method authenticates with client_secret_basic. */
export const DEFAULT_AUTH_METHOD = 'client_secret_basic';
export const SECRET_AUTH_METHODS: readonly string[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt'];
/**
 * A client's RFC 7591 metadata as Gatehouse accepts it (the seed file and the admin API share it).
 * Without `client_id` and `client_secret`: callers add those their own way.
 */
export const CLIENT_METADATA_FIELDS = {
  client_name: text().optional(),
  redirect_uris: list(redirectUrl(), 'absolute http(s) URL').optional(),
  post_logout_redirect_uris: z.array(redirectUrl(), { error: 'must be an array of absolute http(s) URLs' }).optional(),
  grant_types: list(z.enum(GRANT_TYPES, { error: oneOf(GRANT_TYPES) }), 'grant type').optional(),
  // Empty for clients that never use the authorization endpoint (client_credentials, device).
  response_types: z
    .array(z.enum(RESPONSE_TYPES, { error: oneOf(RESPONSE_TYPES) }), { error: 'must be an array of response types' })
    .refine((values) => new Set(values).size === values.length, 'must not repeat a value')
    .optional(),
  token_endpoint_auth_method: z.enum(AUTH_METHODS, { error: oneOf(AUTH_METHODS) }).optional(),
  scope: z.string({ error: 'must be a string' }).regex(SCOPE, 'must be scope names separated by single spaces (e.g. "openid profile email")').optional(),
  client_uri: httpUrl().optional(),
  /** OpenID Connect Core 4: where Gatehouse may start the app's own sign-in (an accepted invitation lands there). */
  initiate_login_uri: z.string({ error: 'must be an absolute https URL' }).refine((v) => isHttpUrl(v, { fragment: true }) && v.startsWith('https:'), 'must be an absolute https URL').optional(),
  logo_uri: httpUrl().optional(),
  policy_uri: httpUrl().optional(),
  tos_uri: httpUrl().optional(),
  application_type: z.enum(['web', 'native'], { error: 'must be web or native' }).optional(),
  jwks_uri: httpUrl().optional(),
  jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown()), { error: 'must be an array of JWKs' }).min(1, 'must list at least one key') }, { error: 'must be a JWK Set ({ "keys": [...] })' }).optional(),
  id_token_signed_response_alg: z.enum(SIGNING_ALGS, { error: oneOf(SIGNING_ALGS) }).optional(),
  subject_type: z.enum(['public', 'pairwise'], { error: 'must be public or pairwise' }).optional(),
  sector_identifier_uri: httpUrl().optional(),
  backchannel_logout_uri: redirectUrl().optional(),
  backchannel_logout_session_required: z.boolean({ error: 'must be true or false' }).optional(),
  require_pushed_authorization_requests: z.boolean({ error: 'must be true or false' }).optional(),
  require_signed_request_object: z.boolean({ error: 'must be true or false' }).optional(),
  request_object_signing_alg: z.enum(SIGNING_ALGS, { error: oneOf(SIGNING_ALGS) }).optional(),
  dpop_bound_access_tokens: z.boolean({ error: 'must be true or false' }).optional(),
  /** Gatehouse's own: every sign-in to this client needs a second factor (TOTP). */
  gatehouse_require_mfa: z.boolean({ error: 'must be true or false' }).optional(),
  /** Gatehouse's own: the ID token carries the groups claim too (scope groups), not only userinfo. */
  id_token_groups: z.boolean({ error: 'must be true or false' }).optional(),
  /** Gatehouse's own: the only groups this client ever sees in the groups claim (the rest are left out). */
  allowed_groups: list(groupName(), 'group name').optional(),
};

export const CLIENT_ID = z.string({ error: required('must be a string') }).regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1–128 characters of A-Z a-z 0-9 . _ ~ -');

/** A client as the seed file gives it: its metadata, client_id and optional secret. */
export const ClientEntry = z
  .strictObject(
    {
      client_id: CLIENT_ID,
      client_secret: z.string({ error: 'must be a string' }).min(32, 'must be at least 32 characters').max(1024, 'must be at most 1024 characters').optional(),
      ...CLIENT_METADATA_FIELDS,
    },
    { error: 'must be an object' },
  )
  .superRefine((client, ctx) => checkClientAuthentication(client, ctx), { when: () => true });

/**
 * Which secret a client needs follows from how it authenticates. Runs even when other fields
 * failed. `secretGenerated`: Gatehouse makes the secret itself (the admin API), so only its
 * absence for a public client is checked.
 */
export function checkClientAuthentication(client: Record<string, unknown>, ctx: z.RefinementCtx, { secretGenerated = false } = {}): void {
  if (!client || typeof client !== 'object') return; // already reported
  // Redirect-based grants need somewhere to redirect to (RFC 7591 2).
  const grants = Array.isArray(client.grant_types) ? client.grant_types : ['authorization_code'];
  if ((grants.includes('authorization_code') || grants.includes('implicit')) && client.redirect_uris === undefined) {
    ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'is required for the authorization_code and implicit grants' });
  }
  const given = client.token_endpoint_auth_method;
  if (given !== undefined && !(AUTH_METHODS as readonly unknown[]).includes(given)) return; // already reported
  const method = (given ?? DEFAULT_AUTH_METHOD) as string;
  const how = given === undefined ? `${method} (the default)` : method;
  if (method === 'none' && client.client_secret !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'must be absent when token_endpoint_auth_method is none (a public client has no secret)' });
  }
  if (!secretGenerated && SECRET_AUTH_METHODS.includes(method) && client.client_secret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['client_secret'], message: `is required when token_endpoint_auth_method is ${how}; use "none" for a public client` });
  }
  if (method === 'private_key_jwt' && client.jwks_uri === undefined && client.jwks === undefined) {
    ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'is required (or jwks) when token_endpoint_auth_method is private_key_jwt' });
  }
}
