// The console's first page, /console: what an operator checks daily. Sign-ins and failed
// sign-ins over the last day (the audit trail), who and how many addresses are locked out now
// (people/lockouts.ts), mail and back-channel logouts that could not be delivered (the outbox),
// and signing keys due for rotation (keys/service.ts). It reads only; each figure links to
// the page where something can be done about it.
import { Router, type Request, type Response } from 'express';
import { countAuditEvents } from '../../audit/service.js';
import { keySchedule } from '../../keys/service.js';
import { listOutbox } from '../../mail/service.js';
import { countLockedAddresses, listLockedAccounts } from '../../people/lockouts.js';
import { managementOf, renderConsole, type ConsoleDeps } from './deps.js';

const DAY_MS = 86_400_000;
const SIGN_IN_EVENTS = ['sign_in.success', 'sign_in.failure', 'sign_in.locked', 'mfa.failure'] as const;

export function createDashboardRouter(deps: ConsoleDeps): Router {
  const { db, config } = deps;
  const now = deps.now ?? (() => new Date());
  const { lockouts } = managementOf(deps);
  const router = Router();

  router.get('/', showDashboard);

  async function showDashboard(req: Request, res: Response) {
    const at = now();
    const [signIns, locked, lockedAddresses, outbox, keys] = await Promise.all([
      countAuditEvents({ db }, SIGN_IN_EVENTS, new Date(at.getTime() - DAY_MS)),
      listLockedAccounts(lockouts),
      countLockedAddresses(lockouts),
      listOutbox({ db, secrets: config.secrets }, { state: 'failed', limit: 5 }),
      keySchedule({ db, config }, at),
    ]);
    await renderConsole(req, res, 'dashboard', { signIns, locked, lockedAddresses, outbox, keys });
  }

  return router;
}
