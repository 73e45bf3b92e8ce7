// The Express application: our pages first, the engine mounted last at the root, and one
// error handler. Body parsers sit on our own POST routes only (the engine parses its own).
import express, { type Express } from 'express';
import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Demo } from '../oidc/demo.js';
import type { InteractionSteps } from '../oidc/interactions.js';
import type { RenderPage } from '../oidc/provider.js';
import { createDemoRouter } from './demo.js';
import { createErrorHandler, notFound } from './errors.js';
import { createInteractionRouter } from './interactions.js';
import { ASSETS_DIR } from './pages.js';
import { securityHeaders } from './security-headers.js';

export interface AppDeps {
  config: Config;
  provider: Provider;
  steps: InteractionSteps;
  renderPage: RenderPage;
  logger: Logger;
  demo?: Demo;
}

export function createApp({ config, provider, steps, renderPage, logger, demo }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  app.use(securityHeaders);
  app.use('/assets', express.static(ASSETS_DIR, { maxAge: '1h', index: false, fallthrough: false }));
  app.use(createInteractionRouter(steps, renderPage));
  if (demo) app.use(createDemoRouter(demo, config.issuer, renderPage));

  app.use(provider.callback());
  // The engine answers its own routes; anything that reaches here is unknown.
  app.use((_req, _res, next) => next(notFound()));
  app.use(createErrorHandler(renderPage, logger));
  return app;
}
