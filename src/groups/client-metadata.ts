// The client metadata of Gatehouse's own that concerns groups (groups/claims.ts reads it), checked
// by the engine on every client it loads and on dynamic registration. Apart from claims.ts so
// that what only needs the claim (people/accounts.ts, and the seed through it) does not
// load the engine.
import { errors } from 'oidc-provider';
import { ALLOWED_GROUPS, ID_TOKEN_GROUPS } from './claims.js';
import { GroupName } from './schema.js';

export const GROUPS_CLIENT_METADATA = [ID_TOKEN_GROUPS, ALLOWED_GROUPS];

/** The engine's extraClientMetadata validator for id_token_groups and allowed_groups. */
export function validateGroupsMetadata(key: string, value: unknown): void {
  if (value === undefined) return;
  if (key === ID_TOKEN_GROUPS && typeof value !== 'boolean') throw new errors.InvalidClientMetadata(`${ID_TOKEN_GROUPS} must be true or false`);
  if (key === ALLOWED_GROUPS) {
    const valid = Array.isArray(value) && value.length > 0 && value.every((name) => GroupName.safeParse(name).success);
    if (!valid) throw new errors.InvalidClientMetadata(`${ALLOWED_GROUPS} must be a non-empty array of group names`);
  }
}
