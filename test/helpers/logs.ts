// A logger whose output the test can read back, one JSON line per entry.
import { Writable } from 'node:stream';
import type { Config } from '../../src/config/index.js';
import { createLogger } from '../../src/core/logger.js';

export function captureLogger(logLevel: Config['logLevel'] = 'info') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ logLevel }, stream), lines, text: () => lines.join('') };
}
