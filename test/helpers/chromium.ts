// Debian's Chromium driven by playwright-core, for the tests that use the pages as people do:
// where it is, how it is launched, and axe-core's accessibility check. Without /usr/bin/chromium
// those tests are skipped with a message, except under CI=true, where a missing browser fails
// (.ci/run installs it).
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Whether the browser tests run here (they must under CI). */
export const browserTestsRun = existsSync(CHROMIUM) || process.env.CI === 'true';
if (!existsSync(CHROMIUM) && process.env.CI !== 'true') {
  console.warn(`[skip] browser tests skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`);
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Where the browser tests photograph pages (git-ignored). */
export const SCREENSHOTS = `${ROOT}tmp/screenshots`;

/** With SCREENSHOTS_FOR_README=1, copies these photographs (file names in SCREENSHOTS) to test/screenshots/, the README's pictures. */
export function refreshReadmeScreenshots(files: readonly string[]): void {
  if (process.env.SCREENSHOTS_FOR_README !== '1') return;
  mkdirSync(`${ROOT}test/screenshots`, { recursive: true });
  for (const file of files) copyFileSync(`${SCREENSHOTS}/${file}`, `${ROOT}test/screenshots/${file}`);
}

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: CI must install it (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * Runs axe-core on the page (injected through the DevTools protocol, which the page's
 * Content-Security-Policy does not govern, so the policy stays on for the whole test).
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(`${AXE_SOURCE};0`);
  return ((await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as { violations: AxeViolation[] }).violations;
}

/** The serious and critical violations, one line each ("page: rule (impact) help at targets"). */
export async function seriousViolations(page: Page, name: string): Promise<string[]> {
  return (await axeViolations(page))
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${name}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
