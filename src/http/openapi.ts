// The admin API's OpenAPI 3.1 document, generated from its route table (admin.ts) and the zod
// schemas the handlers validate with, so the document describes exactly what the code accepts.
// Request schemas are described as sent (zod's "input"), responses as returned ("output");
// every schema with a meta id becomes a named component.
import { z } from 'zod';
import type { AdminRoute } from './admin-routes.js';

/** The one JSON error shape of the admin API (errors.ts renders it). */
export const ErrorBody = z
  .object({
    error: z.string().describe('An OAuth-style error code: invalid_request, invalid_token, insufficient_scope, not_found, conflict, server_error.'),
    error_description: z.string(),
    request_id: z.string().optional().describe('The X-Request-Id of this request, for the logs.'),
    issues: z
      .array(z.object({ path: z.string().describe('The field at fault, dotted ("redirect_uris.0"); empty for the whole body.'), message: z.string() }))
      .optional()
      .describe('Field-level detail of a validation error.'),
  })
  .meta({ id: 'Error' });

const SECURITY_SCHEME = 'gatehouseAdmin';

const idOf = (schema: z.ZodType): string => {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error('every admin API schema needs .meta({ id }) to be named in the OpenAPI document');
  return id;
};

const ref = (schema: z.ZodType) => ({ $ref: `#/components/schemas/${idOf(schema)}` });

/** Named JSON Schemas (draft 2020-12) for the given zod schemas and the named schemas inside them. */
function components(schemas: Iterable<z.ZodType>, io: 'input' | 'output'): Record<string, Record<string, unknown>> {
  const registry = z.registry<{ id: string }>();
  const add = (schema: z.ZodType) => {
    if (!registry.has(schema)) registry.add(schema, { id: idOf(schema) });
  };
  for (const schema of schemas) add(schema);
  for (;;) {
    const { schemas: converted } = z.toJSONSchema(registry, { target: 'draft-2020-12', io, unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` }) as {
      schemas: Record<string, Record<string, unknown>>;
    };
    // Named schemas nested in these (a Client inside a ClientList) land in `__shared`: name them too.
    const nested = Object.keys((converted.__shared?.$defs as Record<string, unknown> | undefined) ?? {});
    if (nested.length === 0) {
      const named: Record<string, Record<string, unknown>> = {};
      for (const [id, schema] of Object.entries(converted)) {
        const { $schema: _dialect, $id: _id, ...rest } = schema;
        named[id] = rest;
      }
      return named;
    }
    for (const id of nested) {
      const schema = z.globalRegistry._idmap.get(id);
      if (!schema) throw new Error(`admin API schema ${id} is not named in zod's registry`);
      add(schema as z.ZodType);
    }
  }
}

/** Path and query parameters: path ones from the Express path, query ones from the route's query schema. */
function parameters(route: AdminRoute): Record<string, unknown>[] {
  const path = [...route.path.matchAll(/:(\w+)/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string', minLength: 1 } }));
  if (!route.query) return path;
  type ObjectSchema = { properties?: Record<string, Record<string, unknown>>; required?: string[]; $ref?: string; $defs?: Record<string, ObjectSchema> };
  const converted = z.toJSONSchema(route.query, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as ObjectSchema;
  // A named schema comes back as a reference to its own definition.
  const json = converted.$ref ? (converted.$defs?.[converted.$ref.replace('#/$defs/', '')] ?? {}) : converted;
  const query = Object.entries(json.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
    schema,
  }));
  return [...path, ...query];
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref(ErrorBody) } } });

export interface OpenApiOptions {
  issuer: string;
  /** Where the router is mounted (`/admin`). */
  prefix: string;
}

export function buildOpenApiDocument(routes: readonly AdminRoute[], { issuer, prefix }: OpenApiOptions) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = `${prefix}${route.path.replace(/:(\w+)/g, '{$1}')}`;
    const status = String(route.response ? (route.status ?? 200) : 204);
    paths[path] ??= {};
    paths[path][route.method] = {
      operationId: `${route.method}${route.path.replace(/\/:?(\w)([\w-]*)/g, (_m, first: string, rest: string) => first.toUpperCase() + rest.replace(/-(\w)/g, (_n, c: string) => c.toUpperCase()))}`,
      summary: route.summary,
      tags: [route.tag],
      security: [{ [SECURITY_SCHEME]: ['admin'] }],
      parameters: parameters(route),
      // A body that may be left out (every field optional) is not required.
      ...(route.body ? { requestBody: { required: !route.body.safeParse({}).success, content: { 'application/json': { schema: ref(route.body) } } } } : {}),
      responses: {
        [status]: route.response ? { description: 'OK', content: { 'application/json': { schema: ref(route.response) } } } : { description: 'Done' },
        '400': errorResponse('The request is invalid; `issues` names each field at fault.'),
        '401': errorResponse('No access token, or an unknown, expired or revoked one (WWW-Authenticate: Bearer error="invalid_token").'),
        '403': errorResponse('The token lacks the admin scope, or its client is not an admin client (error="insufficient_scope").'),
        '404': errorResponse('No such client, user, group, grant, session, identity provider or linked identity.'),
        ...(route.conflict ? { '409': errorResponse(route.conflict) } : route.method === 'post' || route.method === 'put' || route.method === 'patch' ? { '409': errorResponse('Conflicts with what is stored (an email or client_id in use, a client without a secret).') } : {}),
      },
    };
  }
  const requests = routes.flatMap((route) => (route.body ? [route.body] : []));
  const responses = [...routes.flatMap((route) => (route.response ? [route.response] : [])), ErrorBody];
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Gatehouse admin API',
      version: '1',
      description: `Manage clients, users, groups, signing keys and upstream identity providers, and read the audit trail. Get a token with the client_credentials grant at ${issuer}/token (scope admin) as a client registered with scope "admin" and grant type client_credentials.`,
    },
    servers: [{ url: issuer }],
    paths,
    components: {
      schemas: { ...components(requests, 'input'), ...components(responses, 'output') },
      securitySchemes: {
        [SECURITY_SCHEME]: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: { admin: 'Manage Gatehouse' } } } },
      },
    },
  };
}
