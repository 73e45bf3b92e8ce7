// The front pipeline's client address (src/http/front.ts) is what Express's req.ip would be:
// the engine's paths are served before Express, and the engine is told this address.
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { clientAddress, type TrustProxy } from '../../src/http/front.js';
import { trustProxy } from '../../src/config/parsers.js';

const FORWARDED = [undefined, '203.0.113.7', '6.6.6.6, 203.0.113.7', '10.1.2.3, 127.0.0.1', ' , 198.51.100.1 ,, 10.0.0.1', 'not an address, 192.0.2.9', '2001:db8::1, ::1'];

describe('the client address before Express', () => {
  it.each(['false', 'true', '1', '2', 'loopback', '10.0.0.0/8,127.0.0.1', '192.0.2.0/24'])('equals req.ip with TRUST_PROXY=%s', async (setting) => {
    const app = express();
    app.set('trust proxy', trustProxy.parse(setting));
    app.get('/', (req, res) => {
      res.json({ express: req.ip, ours: clientAddress(req, app.get('trust proxy fn') as TrustProxy) });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      for (const forwarded of FORWARDED) {
        const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } });
        const { express: expected, ours } = (await response.json()) as { express: string; ours: string };
        expect(ours, `X-Forwarded-For: ${forwarded}`).toBe(expected);
      }
    } finally {
      server.close();
    }
  });
});
