// The login and consent steps the interaction routes call. Routes stay thin: they load the
// interaction, check the prompt, call one function here, then finish or render.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import type { PasswordVerifier } from './accounts.js';
import type { AuditLog, RequestOrigin } from './audit.js';
import { ACR_PASSWORD } from './provider.js';

/** The parts of the engine's interaction details that our pages use, parsed at the edge. */
const InteractionSchema = z.object({
  uid: z.string(),
  /** A random value the engine keeps with the interaction and never shows (binds form tokens). */
  cid: z.string().min(1),
  prompt: z.object({
    name: z.string(),
    reasons: z.array(z.string()).default([]),
    details: z
      .object({
        missingOIDCScope: z.array(z.string()).optional(),
        missingOIDCClaims: z.array(z.string()).optional(),
        missingResourceScopes: z.record(z.string(), z.array(z.string())).optional(),
      })
      .loose()
      .default({}),
  }),
  params: z
    .object({
      client_id: z.string(),
      login_hint: z.string().optional(),
      ui_locales: z.string().optional(),
      scope: z.string().optional(),
    })
    .loose(),
  session: z.object({ accountId: z.string(), uid: z.string().optional() }).loose().optional(),
  grantId: z.string().optional(),
});

export type Interaction = z.infer<typeof InteractionSchema>;

export interface ClientSummary {
  clientId: string;
  name: string;
  uri?: string;
  logoUri?: string;
  policyUri?: string;
  tosUri?: string;
}

export interface InteractionSteps {
  load(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  describeClient(clientId: string): Promise<ClientSummary>;
  submitLogin(req: IncomingMessage, res: ServerResponse, email: string, password: string, origin: RequestOrigin): Promise<boolean>;
  confirmConsent(req: IncomingMessage, res: ServerResponse, interaction: Interaction, origin: RequestOrigin): Promise<void>;
  abortInteraction(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createInteractionSteps(provider: Provider, passwords: PasswordVerifier, audit: AuditLog): InteractionSteps {
  return {
    async load(req, res) {
      return InteractionSchema.parse(await provider.interactionDetails(req, res));
    },

    async describeClient(clientId) {
      const client = await provider.Client.find(clientId);
      const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
      return {
        clientId,
        name: text(client?.clientName) ?? clientId,
        uri: text(client?.clientUri),
        logoUri: text(client?.logoUri),
        policyUri: text(client?.policyUri),
        tosUri: text(client?.tosUri),
      };
    },

    /** Finishes the login prompt when the password is right; false (nothing sent) when not. */
    async submitLogin(req, res, email, password, origin) {
      const accountId = await passwords.verifyPassword(email, password, origin);
      if (!accountId) return false;
      const result: InteractionResults = { login: { accountId, amr: ['pwd'], acr: ACR_PASSWORD } };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return true;
    },

    /** Grants what the consent prompt asked for, on the existing grant when there is one. */
    async confirmConsent(req, res, interaction, origin) {
      const { details } = interaction.prompt;
      const accountId = interaction.session?.accountId;
      if (!accountId) throw new Error('consent prompt without a signed-in account');
      const grant =
        (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined) ??
        new provider.Grant({ accountId, clientId: interaction.params.client_id });
      if (details.missingOIDCScope?.length) grant.addOIDCScope(details.missingOIDCScope.join(' '));
      if (details.missingOIDCClaims?.length) grant.addOIDCClaims(details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await audit.record({
        type: 'consent.given',
        accountId,
        clientId: interaction.params.client_id,
        ...origin,
        details: { scopes: details.missingOIDCScope ?? [], claims: details.missingOIDCClaims ?? [], resources: Object.keys(details.missingResourceScopes ?? {}) },
      });
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    },

    async abortInteraction(req, res) {
      const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    },
  };
}
