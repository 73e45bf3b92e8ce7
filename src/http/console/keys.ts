// The console's signing keys section, /console/keys: every key with its state and dates
// (keys/service.ts listKeys), the rotation schedule (what KEY_ROTATION_INTERVAL and
// KEY_ACTIVATION_DELAY say and when each algorithm's newest key is due), and rotation now,
// with the service's options: one algorithm or all, and `immediate` (sign with the new key at
// once, for a suspected compromise) instead of after the activation delay.
import { Router, type Request, type Response } from 'express';
import { keySchedule, listKeys, rotateKeys } from '../../keys/service.js';
import { SIGNING_ALGORITHMS } from '../../keys/signing-keys.js';
import { consoleOf, consoleRedirect, managementOf, renderConsole, type ConsoleDeps } from './deps.js';
import { bodyOf, isTicked, orFormAgain, textField } from './forms.js';

export function createKeysRouter(deps: ConsoleDeps): Router {
  const { keys: management } = managementOf(deps);
  const now = deps.now ?? (() => new Date());
  const router = Router();

  router.get('/keys', showKeys);
  router.post('/keys/rotate', rotate);

  /** What the page shows, before and after a refused rotation alike. */
  async function pageLocals() {
    const [{ keys }, schedule] = await Promise.all([listKeys(management), keySchedule(management, now())]);
    return { keys, schedule, algorithms: SIGNING_ALGORITHMS, activationDelay: deps.config.keys.activationDelay };
  }

  async function showKeys(req: Request, res: Response) {
    await renderConsole(req, res, 'keys', await pageLocals());
  }

  async function rotate(req: Request, res: Response) {
    const body = bodyOf(req);
    const input = { alg: textField(body, 'alg', undefined), immediate: isTicked(body, 'immediate') };
    const result = await orFormAgain(req, res, 'keys', pageLocals, () => rotateKeys(management, input, consoleOf(res).actor));
    if (!result) return;
    consoleRedirect(res, '/console/keys', input.immediate ? 'keys_rotated_immediately' : 'keys_rotated');
  }

  return router;
}
