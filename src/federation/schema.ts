// What an upstream identity provider's declaration may be: the seed file (`identity_providers`),
// the admin API and the CLI validate with these. Two kinds: `oidc` reads its endpoints and keys
// from the issuer's discovery document; `oauth2` is given its endpoints, or takes them from the
// `github` preset (which also says how to read GitHub's user and verified-email answers).
import { z } from 'zod';
import { httpUrl, list, oneOf, required, SCOPE, text } from '../core/fields.js';

export const IDP_KINDS = ['oidc', 'oauth2'] as const;
export const IDP_PRESETS = ['github'] as const;
export const IDP_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

/** The profile fields a claim mapping fills: which upstream claim (or GitHub user field) each comes from. */
export const MAPPED_FIELDS = ['subject', 'email', 'email_verified', 'name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale'] as const;
export type MappedField = (typeof MAPPED_FIELDS)[number];

/** In URLs (/federation/<id>/callback): lower-case letters, digits, `-` and `_`. */
export const IDP_ID = z
  .string({ error: required('must be a string') })
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be 1 to 63 lower-case letters, digits, - or _, starting with a letter or digit');

const DOMAIN = z
  .string({ error: 'must be a string' })
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a domain name such as example.com');

const CLAIM_NAME = z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(128, 'must be at most 128 characters');

/** The declaration's fields besides `id` and `client_secret` (which create and update treat their own ways). */
export const IDP_FIELDS = {
  display_name: text(80),
  icon_uri: httpUrl().optional(),
  kind: z.enum(IDP_KINDS, { error: required(oneOf(IDP_KINDS)) }),
  preset: z.enum(IDP_PRESETS, { error: oneOf(IDP_PRESETS) }).optional().describe('oauth2 only: fills the endpoints and the claim mapping.'),
  enabled: z.boolean({ error: 'must be true or false' }).default(true),
  issuer: httpUrl().optional().describe('oidc: the issuer; its /.well-known/openid-configuration is read.'),
  authorization_endpoint: httpUrl().optional(),
  token_endpoint: httpUrl().optional(),
  userinfo_endpoint: httpUrl().optional(),
  emails_endpoint: httpUrl().optional().describe('github: where verified emails are listed (GET /user/emails).'),
  client_id: text(255),
  token_endpoint_auth_method: z.enum(IDP_AUTH_METHODS, { error: oneOf(IDP_AUTH_METHODS) }).optional(),
  scope: z.string({ error: 'must be a string' }).regex(SCOPE, 'must be scope names separated by single spaces').optional(),
  claims: z
    .strictObject(Object.fromEntries(MAPPED_FIELDS.map((field) => [field, CLAIM_NAME.optional()])) as Record<MappedField, z.ZodOptional<typeof CLAIM_NAME>>, { error: 'must be an object' })
    .optional()
    .describe('Which upstream claim fills each profile field; by default the field of the same name (subject: sub).'),
  email_domains: list(DOMAIN, 'domain').optional().describe('Only people whose upstream email is in one of these domains may sign in.'),
  create_accounts: z.boolean({ error: 'must be true or false' }).default(false),
  link_by_verified_email: z.boolean({ error: 'must be true or false' }).default(false),
  trusted: z.boolean({ error: 'must be true or false' }).default(false).describe("Accept the upstream's amr/acr as multi-factor authentication."),
  mfa_acr_values: list(CLAIM_NAME, 'acr value').optional().describe('trusted: upstream acr values that mean multi-factor authentication.'),
};

export const CLIENT_SECRET = z.string({ error: required('must be a string') }).min(1, 'must not be empty').max(1024, 'must be at most 1024 characters');

type Fields = { [K in keyof typeof IDP_FIELDS]: z.output<(typeof IDP_FIELDS)[K]> };

/** What each kind needs: an oidc issuer; an oauth2's endpoints unless the preset gives them. */
export function checkIdpKind(idp: Partial<Record<keyof Fields, unknown>>, ctx: z.RefinementCtx): void {
  if (!idp || typeof idp !== 'object') return; // already reported
  if (idp.kind === 'oidc') {
    if (idp.issuer === undefined) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'is required for kind oidc' });
    for (const field of ['preset', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'emails_endpoint'] as const) {
      if (idp[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'is for kind oauth2 (oidc reads its endpoints from discovery)' });
    }
  }
  if (idp.kind === 'oauth2') {
    if (idp.issuer !== undefined) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'is for kind oidc' });
    if (idp.preset === undefined) {
      for (const field of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint'] as const) {
        if (idp[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'is required for kind oauth2 without a preset' });
      }
    }
  }
}

/** A declaration as the seed file gives it: every field, the clear client secret among them. */
export const IdentityProviderEntry = z
  .strictObject({ id: IDP_ID, ...IDP_FIELDS, client_secret: CLIENT_SECRET }, { error: 'must be an object' })
  .superRefine(checkIdpKind, { when: () => true });

export type IdentityProviderDeclaration = z.output<typeof IdentityProviderEntry>;

/** What is kept in the `settings` column: the declaration without its id, name, kind, state and secret. */
export type IdpSettings = Omit<IdentityProviderDeclaration, 'id' | 'display_name' | 'kind' | 'enabled' | 'client_secret'>;

/** The GitHub preset: its endpoints, scope and how its /user answer maps to profile fields. */
export const GITHUB = {
  authorization_endpoint: 'https://github.com/login/oauth/authorize',
  token_endpoint: 'https://github.com/login/oauth/access_token',
  userinfo_endpoint: 'https://api.github.com/user',
  emails_endpoint: 'https://api.github.com/user/emails',
  scope: 'read:user user:email',
  token_endpoint_auth_method: 'client_secret_post',
  claims: { subject: 'id', name: 'name', preferred_username: 'login', picture: 'avatar_url' } as Partial<Record<MappedField, string>>,
} as const;

/** A declaration with its preset and defaults filled in: what the upstream flow uses. */
export interface ResolvedIdp {
  id: string;
  displayName: string;
  kind: (typeof IDP_KINDS)[number];
  preset: (typeof IDP_PRESETS)[number] | undefined;
  issuer: string | undefined;
  authorizationEndpoint: string | undefined;
  tokenEndpoint: string | undefined;
  userinfoEndpoint: string | undefined;
  emailsEndpoint: string | undefined;
  clientId: string;
  authMethod: (typeof IDP_AUTH_METHODS)[number];
  scope: string;
  claims: Record<MappedField, string>;
  emailDomains: string[] | undefined;
  createAccounts: boolean;
  linkByVerifiedEmail: boolean;
  trusted: boolean;
  mfaAcrValues: string[];
  updatedAt: Date;
}

const IDENTITY_CLAIMS = Object.fromEntries(MAPPED_FIELDS.map((field) => [field, field === 'subject' ? 'sub' : field])) as Record<MappedField, string>;

export function resolveIdp(row: { id: string; displayName: string; kind: string; settings: IdpSettings; updatedAt: Date }): ResolvedIdp {
  const s = row.settings;
  const github = s.preset === 'github' ? GITHUB : undefined;
  return {
    id: row.id,
    displayName: row.displayName,
    kind: row.kind as ResolvedIdp['kind'],
    preset: s.preset,
    issuer: s.issuer,
    authorizationEndpoint: s.authorization_endpoint ?? github?.authorization_endpoint,
    tokenEndpoint: s.token_endpoint ?? github?.token_endpoint,
    userinfoEndpoint: s.userinfo_endpoint ?? github?.userinfo_endpoint,
    emailsEndpoint: s.emails_endpoint ?? github?.emails_endpoint,
    clientId: s.client_id,
    authMethod: s.token_endpoint_auth_method ?? github?.token_endpoint_auth_method ?? 'client_secret_basic',
    scope: s.scope ?? github?.scope ?? (row.kind === 'oidc' ? 'openid email profile' : ''),
    claims: { ...IDENTITY_CLAIMS, ...github?.claims, ...s.claims },
    emailDomains: s.email_domains,
    createAccounts: s.create_accounts,
    linkByVerifiedEmail: s.link_by_verified_email,
    trusted: s.trusted,
    mfaAcrValues: s.mfa_acr_values ?? [],
    updatedAt: row.updatedAt,
  };
}

/** The redirect URI to register at the upstream. */
export const federationCallbackUrl = (issuer: string, id: string) => `${issuer}/federation/${id}/callback`;
