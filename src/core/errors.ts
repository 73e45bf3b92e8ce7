// The errors the management layer (clients/, people/, keys/, audit/ service.ts) throws. The admin API
// maps them once in http/errors.ts; the CLI prints their message (and issues) as they are.
import type { ZodError } from 'zod';

/** One problem with one field of a request: `path` names it ("redirect_uris.0"), empty for the whole body. */
export interface FieldIssue {
  path: string;
  message: string;
}

export class ManagementError extends Error {
  override name = 'ManagementError';
}

/** The client, user, grant or session asked for does not exist. */
export class NotFoundError extends ManagementError {
  override name = 'NotFoundError';
}

/** The request contradicts what is stored (an email or client_id already taken, a public client has no secret). */
export class ConflictError extends ManagementError {
  override name = 'ConflictError';
}

/** The input is invalid; `issues` names every field at fault. */
export class ValidationError extends ManagementError {
  override name = 'ValidationError';
  constructor(
    message: string,
    readonly issues: readonly FieldIssue[],
  ) {
    super(message);
  }

  static field(path: string, message: string): ValidationError {
    return new ValidationError(`${path}: ${message}`, [{ path, message }]);
  }

  /** Several fields at fault at once, each named in the message. */
  static of(issues: readonly FieldIssue[]): ValidationError {
    return new ValidationError(issues.map((issue) => `${issue.path}: ${issue.message}`).join('; '), issues);
  }
}

/** Zod's issues as field issues: `path` joined with dots. */
export function fieldIssues(error: ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // One issue per unknown field, named by the field itself.
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'is not a known field' }));
    return [{ path: path.join('.'), message: issue.message }];
  });
}

/** Parses `input` with `schema`, or throws a ValidationError naming every field at fault. */
export function parseInput<T>(schema: { safeParse(input: unknown): { success: true; data: T } | { success: false; error: ZodError } }, input: unknown): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error);
  const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
  throw new ValidationError(summary || 'the input is invalid', issues);
}
