// The Flask + Authlib baseline (authlib_server.py): whether this machine can run it, and its
// seed. It runs on Debian's packages for the system Python, never on whatever `python3` is first
// on PATH: /usr/bin/python3 with python3-authlib, python3-flask, python3-flask-sqlalchemy,
// python3-sqlalchemy and python3-bcrypt, under /usr/bin/gunicorn (package gunicorn).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { JWT_API, MACHINE_CLIENT, PASSWORD, REDIRECT_URI, WEB_CLIENT, userEmail } from './fixtures.js';

export const PYTHON = '/usr/bin/python3';
export const GUNICORN = '/usr/bin/gunicorn';
/** Where authlib_server.py is; gunicorn imports it from there. */
export const AUTHLIB_DIR = fileURLToPath(new URL('.', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./authlib_server.py', import.meta.url));
const MODULES = ['authlib', 'flask', 'flask_sqlalchemy', 'sqlalchemy', 'bcrypt'];
const PACKAGES = 'gunicorn python3-authlib python3-flask python3-flask-sqlalchemy python3-sqlalchemy python3-bcrypt';

/** Why the Authlib baseline cannot run here, or undefined when it can. */
export function authlibMissing(): string | undefined {
  if (!existsSync(GUNICORN) || !existsSync(PYTHON)) return `${existsSync(PYTHON) ? GUNICORN : PYTHON} not found (apt-get install ${PACKAGES})`;
  try {
    execFileSync(PYTHON, ['-c', `import ${MODULES.join(', ')}`], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim().split('\n').at(-1);
    return `${PYTHON} cannot import ${MODULES.join(', ')}: ${stderr} (apt-get install ${PACKAGES})`;
  }
}

/** Creates the Authlib server's tables and rows in the SQLite file `url` (file:…): the bench's clients, people and signing key. */
export function seedAuthlib(url: string, { users, bcryptCost }: { users: number; bcryptCost: number }): void {
  const seed = {
    clients: [
      { client_id: WEB_CLIENT.id, client_secret: WEB_CLIENT.secret, redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access' },
      { client_id: MACHINE_CLIENT.id, client_secret: MACHINE_CLIENT.secret, grant_types: ['client_credentials'], scope: 'read' },
    ],
    jwtResources: [JWT_API],
    emails: Array.from({ length: users }, (_, i) => userEmail(i)),
    password: PASSWORD,
    bcryptCost,
  };
  execFileSync(PYTHON, [SCRIPT, 'seed'], { env: { ...process.env, DATABASE_URL: url, AUTHLIB_SEED: JSON.stringify(seed), PYTHONDONTWRITEBYTECODE: '1' }, stdio: ['ignore', 'inherit', 'inherit'] });
}
