// What loadConfig refuses, as the configuration tests read it: every problem it names at once.
import { expect } from 'vitest';
import { ConfigError } from '../../src/config/index.js';

/** The problems `load` (loadConfig, as the test calls it) reports for `env`; fails the test when it accepts it. */
export function configProblems(load: (env: Record<string, string>) => unknown, env: Record<string, string>): readonly string[] {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  return expect.fail(`loadConfig accepted ${JSON.stringify(env)}`);
}
