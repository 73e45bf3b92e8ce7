// Turning the console's HTML forms into the management layer's inputs, and its refusals back into
// the form: for the sections of clients, signing keys, identity providers and the audit trail.
// A form always sends every field it shows, so an edit sends each one: an empty text field or
// no box ticked becomes `null` (the service removes the field), never a silent "keep".
// The services' own field messages are shown beside each field as they are written (English).
import type { Request, Response } from 'express';
import { ConflictError, ValidationError } from '../../core/errors.js';
import { renderConsole } from './deps.js';

/** The urlencoded body as the frame parsed it (extended: false): a string, or an array for a repeated name. */
export type FormBody = Record<string, string | string[] | undefined>;

export const bodyOf = (req: Request): FormBody => (req.body ?? {}) as FormBody;

/** A text field, trimmed; absent or empty: `empty` (undefined on creation, null on an edit). */
export function textField<E extends null | undefined>(body: FormBody, name: string, empty: E): string | E {
  const raw = body[name];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim() ?? '';
  return value === '' ? empty : value;
}

/** A textarea of one value per line (commas also separate); none: `empty`. */
export function linesField<E extends null | undefined>(body: FormBody, name: string, empty: E): string[] | E {
  const text = textField(body, name, undefined) ?? '';
  const values = text.split(/[\r\n,]+/).map((line) => line.trim()).filter(Boolean);
  return values.length ? values : empty;
}

/** The ticked boxes of a group sharing `name`; none: `empty`. */
export function checkedField<E extends null | undefined>(body: FormBody, name: string, empty: E): string[] | E {
  const raw = body[name];
  const values = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((value) => value !== '');
  return values.length ? values : empty;
}

/** One checkbox: ticked or not. */
export const isTicked = (body: FormBody, name: string) => checkedField(body, name, undefined) !== undefined;

/** A field's errors by the field's name (the first segment of the issue's path); '' for the whole form. */
export type FormErrors = Record<string, string>;

/**
 * The service refused the input: each field's message (ValidationError) or the whole form's
 * (ConflictError, e.g. a client_id already taken). Anything else is not the form's to show.
 */
export function formErrorsOf(error: unknown): FormErrors | undefined {
  if (error instanceof ValidationError) {
    const errors: FormErrors = {};
    for (const issue of error.issues) {
      const field = issue.path.split('.')[0] ?? '';
      errors[field] = errors[field] ? `${errors[field]}; ${issue.message}` : issue.message;
    }
    return Object.keys(errors).length ? errors : { '': error.message };
  }
  if (error instanceof ConflictError) return { '': error.message };
  return undefined;
}

/** A page's locals, or how to read them (only when the form is shown again). */
type PageLocals = Record<string, unknown> | (() => Promise<Record<string, unknown>>);

/**
 * Runs `change` (one service call); when the service refuses the input, renders `view` again
 * with each field's error and the input as sent (400), and nothing was changed.
 */
export async function orFormAgain<T>(req: Request, res: Response, view: string, locals: PageLocals, change: () => Promise<T>): Promise<T | undefined> {
  try {
    return await change();
  } catch (error) {
    const errors = formErrorsOf(error);
    if (!errors) throw error;
    const shown = typeof locals === 'function' ? await locals() : locals;
    await renderConsole(req, res, view, { ...shown, errors, values: bodyOf(req) }, error instanceof ConflictError ? 409 : 400);
    return undefined;
  }
}
