// The consent step and what the sign-in and consent pages show of the app: its name and links,
// what it asks for now and what its existing grant holds. Part of the interaction steps
// (interactions.ts), kept apart because consent is its own prompt.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import type { Interaction } from './interaction-state.js';
import type { LoadedInteractions } from './loaded-interactions.js';

export interface ClientSummary {
  clientId: string;
  name: string;
  uri?: string;
  logoUri?: string;
  policyUri?: string;
  tosUri?: string;
}

/** Scopes, claims and resource scopes, as the consent page lists them. */
export interface Permissions {
  scopes: string[];
  claims: string[];
  resources: { indicator: string; scopes: string[] }[];
}

/** What the app asks for now, and what the person already allowed it (its existing grant). */
export interface ConsentRequest {
  requested: Permissions;
  granted: Permissions;
}

/** `openid` is implied by every sign-in: the page says "know who you are" on its own. */
const withoutOpenid = (scopes: string[]) => scopes.filter((scope) => scope !== 'openid');
const splitScope = (scope: string | undefined) => (scope ? scope.split(' ').filter(Boolean) : []);

export interface ConsentSteps {
  describeClient(clientId: string): Promise<ClientSummary>;
  /** For the consent page: what is new in this request and what the existing grant holds. */
  describeConsent(interaction: Interaction): Promise<ConsentRequest>;
  confirmConsent(req: IncomingMessage, res: ServerResponse, interaction: Interaction, origin: RequestOrigin): Promise<void>;
}

export function createConsentSteps(provider: Provider, audit: AuditLog, interactions: LoadedInteractions): ConsentSteps {
  return {
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

    async describeConsent(interaction) {
      const { details } = interaction.prompt;
      const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
      return {
        requested: {
          scopes: withoutOpenid(details.missingOIDCScope ?? []),
          claims: details.missingOIDCClaims ?? [],
          resources: Object.entries(details.missingResourceScopes ?? {}).map(([indicator, scopes]) => ({ indicator, scopes })),
        },
        granted: {
          scopes: withoutOpenid(splitScope(grant?.getOIDCScope())),
          claims: grant?.getOIDCClaims() ?? [],
          resources: Object.keys(grant?.resources ?? {}).map((indicator) => ({ indicator, scopes: splitScope(grant?.getResourceScope(indicator)) })),
        },
      };
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
      await interactions.finish(req, res, { consent: { grantId } }, { merge: true });
    },

  };
}
