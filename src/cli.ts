#!/usr/bin/env node
// The `gatehouse` command line (package.json "bin" → dist/cli.js once built; `npm run cli -- …`
// runs this file through tsx in development). The commands live in src/cli/.
import { runCli } from './cli/program.js';

const outcome = await runCli(process.argv);
// Everything but `serve` is done: exit now rather than wait for idle timers or pools.
if (outcome !== 'serving') process.exit(outcome);
