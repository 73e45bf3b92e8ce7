// The page renderer compiles each template and partial once: rendering a page again reads
// nothing from disk and asks the file system nothing (includes name their partial from the views
// folder, `/partials/top`, so EJS needs no existence check to find it).
import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPageRenderer } from '../../src/http/pages.js';

describe('the page renderer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('renders a page with its partials again without touching the file system', async () => {
    const render = createPageRenderer();
    const first = await render('error', { lang: 'en', error: 'invalid_request', description: 'Something is missing.' });
    expect(first).toContain('Something is missing.');
    expect(first).toContain('</html>');
    const exists = vi.spyOn(fs, 'existsSync');
    const read = vi.spyOn(fs, 'readFileSync');
    const again = await render('error', { lang: 'ko', error: 'invalid_request', description: 'Something is missing.' });
    expect(again).toContain('lang="ko"');
    expect(exists).not.toHaveBeenCalled();
    expect(read).not.toHaveBeenCalled();
  });
});
