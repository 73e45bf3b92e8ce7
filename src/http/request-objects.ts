// The request and response objects our server makes: Node's own, with Express's methods on their
// class from the start. Express gives every request its methods by swapping the prototypes of
// `req` and `res` (Object.setPrototypeOf in app.handle). That swap changes each object's hidden
// class after Node has built it, so V8 then runs Node's, Koa's and our own code on them through
// its slow, megamorphic lookups: on the sign-in pages it cost a code flow 5–9 % of its main
// thread (test/bench/ROUNDS.md, round 17). With these classes the swap sets the prototype an
// object already has, which V8 skips, and each request keeps the one hidden class it was made with.
//
// The engine's paths see the same objects (http/app.ts); Express's additions are methods and lazy
// getters that neither Koa nor the engine read. A request that reaches Express on plain objects
// (supertest's own server, tests) still gets the methods, by Express's swap, as before.
import { IncomingMessage, ServerResponse, type ServerOptions } from 'node:http';
import express, { type Express } from 'express';

/** Node's request with Express's request methods (express.request), for node:http's `IncomingMessage` option. */
export class AppRequest extends IncomingMessage {}

/** Node's response with Express's response methods (express.response), for node:http's `ServerResponse` option. */
export class AppResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {}

/** Puts what `source` defines itself (Express's methods and getters) on `target`. */
function defineAll(target: object, source: object): void {
  for (const key of Reflect.ownKeys(source)) {
    if (key !== 'constructor') Object.defineProperty(target, key, Reflect.getOwnPropertyDescriptor(source, key)!);
  }
}
defineAll(AppRequest.prototype, express.request);
defineAll(AppResponse.prototype, express.response);

/** node:http's options for a server whose requests an app that adopted these objects answers. */
export const REQUEST_OBJECTS = { IncomingMessage: AppRequest, ServerResponse: AppResponse } satisfies ServerOptions;

/**
 * Makes `app` take these classes' prototypes as its request and response prototypes; call it
 * before anything else is added to `app`, and never mount `app` in another. Express's own
 * prototypes (`app.request`, `app.response`) are the app's alone and name it in an `app` property
 * that its methods read (`this.app.get('trust proxy fn')`). These are shared by every app in the
 * process, so the app's first middleware gives each request and response their app as their own
 * property.
 */
export function adoptRequestObjects(app: Express): void {
  app.request = AppRequest.prototype as unknown as Express['request'];
  app.response = AppResponse.prototype as unknown as Express['response'];
  // Mounted in another app, Express would give these shared prototypes that app's as parents.
  app.prependListener('mount', () => {
    throw new Error('an app whose requests are made with AppRequest cannot be mounted in another app');
  });
  app.use(function nameTheApp(req, res, next) {
    req.app = app;
    res.app = app;
    next();
  });
}
