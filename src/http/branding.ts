// The deployment's look, served next to our own stylesheet: a small generated stylesheet with
// the primary colour (the CSP allows no inline styles), the operator's own CSS and logo file.
// The colour is adjusted, if needed, until text and links keep WCAG AA contrast (4.5:1) on the
// light and the dark card background.
import { extname } from 'node:path';
import { Router } from 'express';
import type { Config } from '../config/index.js';
import { BRAND_ASSETS } from './pages.js';

type Rgb = readonly [number, number, number];

/**
 * The backgrounds in views/assets/gatehouse.css that the colour is hardest to read on: light
 * mode's page background (--bg, darker than the white card) and dark mode's card.
 */
const LIGHT_BACKGROUND: Rgb = [0xf4, 0xf5, 0xf7];
const DARK_BACKGROUND: Rgb = [0x1b, 0x1f, 0x24];
const WHITE: Rgb = [0xff, 0xff, 0xff];
const NEAR_BLACK: Rgb = [0x0b, 0x10, 0x20];
const AA_TEXT = 4.5;

function parseHex(hex: string): Rgb {
  const digits = hex.replace(/^#/, '');
  const full = digits.length === 3 ? [...digits].map((d) => d + d).join('') : digits;
  return [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16)) as unknown as Rgb;
}

const toHex = (rgb: Rgb) => `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;

/** WCAG 2.2 relative luminance. */
function luminance(rgb: Rgb): number {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a: Rgb, b: Rgb): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

const mix = (from: Rgb, to: Rgb, amount: number): Rgb => from.map((c, i) => c + ((to[i] as number) - c) * amount) as unknown as Rgb;

/** The colour, moved towards `towards` in small steps until it reaches AA contrast on `background`. */
function readableOn(colour: Rgb, background: Rgb, towards: Rgb): Rgb {
  for (let step = 0; step <= 20; step++) {
    const candidate = mix(colour, towards, step / 20);
    if (contrast(candidate, background) >= AA_TEXT) return candidate;
  }
  return towards;
}

/** Text on a button of this colour: whichever of white and near-black reads better. */
const textOn = (colour: Rgb): Rgb => (contrast(colour, WHITE) >= contrast(colour, NEAR_BLACK) ? WHITE : NEAR_BLACK);

export function brandStylesheet(primaryColor: string): string {
  const given = parseHex(primaryColor);
  const light = readableOn(given, LIGHT_BACKGROUND, [0, 0, 0]);
  const dark = readableOn(given, DARK_BACKGROUND, WHITE);
  return [
    `/* Generated from BRAND_PRIMARY_COLOR ${primaryColor}, adjusted for AA contrast. */`,
    `:root { --primary: ${toHex(light)}; --primary-text: ${toHex(textOn(light))}; }`,
    `@media (prefers-color-scheme: dark) { :root { --primary: ${toHex(dark)}; --primary-text: ${toHex(textOn(dark))}; } }`,
    '',
  ].join('\n');
}

const IMAGE_TYPES: Record<string, string> = { '.svg': 'image/svg+xml', '.png': 'image/png', '.webp': 'image/webp', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif' };

/** Mount before the static /assets handler, which answers 404 for anything it does not have. */
export function createBrandingRouter(branding: Config['branding']): Router {
  const router = Router();
  const stylesheet = brandStylesheet(branding.primaryColor);
  const cacheFor = { maxAge: '1h' } as const;

  router.get(BRAND_ASSETS.stylesheet, function serveBrandStylesheet(_req, res) {
    res.set('Cache-Control', 'public, max-age=3600').type('css').send(stylesheet);
  });
  const { cssFile, logoFile } = branding;
  if (cssFile) {
    router.get(BRAND_ASSETS.customCss, function serveCustomCss(_req, res, next) {
      res.type('css').sendFile(cssFile, cacheFor, (error) => error && next(error));
    });
  }
  if (logoFile) {
    router.get(BRAND_ASSETS.logo, function serveLogo(_req, res, next) {
      // An SVG logo must never run script, even when opened on its own.
      res.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox");
      res.type(IMAGE_TYPES[extname(logoFile).toLowerCase()] ?? 'application/octet-stream').sendFile(logoFile, cacheFor, (error) => error && next(error));
    });
  }
  return router;
}
