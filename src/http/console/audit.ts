// The console's audit trail, /console/audit: events newest first, filtered by person (their email
// or account id), client, event type and time range, a page at a time. A GET form, so a filtered
// page is a link an administrator can share; the query is audit/service.ts's, as the admin API's
// GET /admin/audit-events makes it. Times are entered and shown in UTC.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { queryAuditEvents } from '../../audit/service.js';
import { AUDIT_EVENT_TYPES } from '../../audit/store.js';
import { renderConsole, type ConsoleDeps } from './deps.js';
import { formErrorsOf } from './forms.js';

export const AUDIT_PAGE_SIZE = 50;

/** The filter form as it arrives: every field a short string; unknown ones ignored. */
const AuditFilterForm = z.object({
  person: z.string().max(320).catch(''),
  client: z.string().max(255).catch(''),
  type: z.string().max(64).catch(''),
  since: z.string().max(40).catch(''),
  until: z.string().max(40).catch(''),
  page: z.coerce.number().int().min(1).max(20_000).catch(1),
}).partial();
type AuditFilterForm = z.infer<typeof AuditFilterForm>;

/**
 * A time as the form's datetime-local field sends it (no zone: the console's times are UTC), or
 * a date alone (the whole day, from its start or to its end); anything else goes to the service
 * as given, which says what is wrong with it.
 */
export function instantOf(value: string, end: 'start' | 'end'): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${value}T${end === 'start' ? '00:00:00' : '23:59:59.999'}Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value)) return `${value}:${end === 'start' ? '00' : '59.999'}Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(value)) return `${value}Z`;
  return value;
}

/** The filter as the service's query: a person with an @ is an email, otherwise an account id. */
function auditQuery(form: AuditFilterForm, page: number) {
  const person = form.person?.trim() ?? '';
  const nonEmpty = (value: string | undefined) => (value?.trim() ? value.trim() : undefined);
  return {
    ...(person ? (person.includes('@') ? { email: person } : { account_id: person }) : {}),
    client_id: nonEmpty(form.client),
    type: nonEmpty(form.type),
    since: form.since?.trim() ? instantOf(form.since.trim(), 'start') : undefined,
    until: form.until?.trim() ? instantOf(form.until.trim(), 'end') : undefined,
    // One more than a page: whether there is a next page, without counting them all.
    limit: AUDIT_PAGE_SIZE + 1,
    offset: (page - 1) * AUDIT_PAGE_SIZE,
  };
}

export function createAuditRouter(deps: ConsoleDeps): Router {
  const { db } = deps;
  const router = Router();

  router.get('/audit', showAudit);

  async function showAudit(req: Request, res: Response) {
    const form = AuditFilterForm.parse(req.query);
    const page = form.page ?? 1;
    const values = { person: form.person ?? '', client: form.client ?? '', type: form.type ?? '', since: form.since ?? '', until: form.until ?? '' };
    const link = (to: number) => `/console/audit?${new URLSearchParams({ ...Object.fromEntries(Object.entries(values).filter(([, v]) => v)), page: String(to) })}`;
    try {
      const found = await queryAuditEvents({ db }, auditQuery(form, page));
      await renderConsole(req, res, 'audit', {
        values,
        types: AUDIT_EVENT_TYPES,
        events: found.slice(0, AUDIT_PAGE_SIZE),
        page,
        previous: page > 1 ? link(page - 1) : undefined,
        next: found.length > AUDIT_PAGE_SIZE ? link(page + 1) : undefined,
        filterLink: (field: string, value: string) => `/console/audit?${new URLSearchParams({ [field]: value })}`,
      });
    } catch (error) {
      const errors = formErrorsOf(error);
      if (!errors) throw error;
      // The filter named a field by the service's name: shown beside the form's field of that meaning.
      const byField: Record<string, string> = {};
      for (const [field, message] of Object.entries(errors)) byField[FORM_FIELD[field] ?? field] = message;
      await renderConsole(req, res, 'audit', { values, types: AUDIT_EVENT_TYPES, events: [], page, errors: byField, filterLink: () => '' }, 400);
    }
  }

  return router;
}

/** The service's field names, as the form calls them. */
const FORM_FIELD: Record<string, string> = { account_id: 'person', email: 'person', client_id: 'client', type: 'type', since: 'since', until: 'until', offset: 'page' };
