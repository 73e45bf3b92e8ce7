// The placeholder the engine holds for a client whose secret is only hashed (clients/secrets.ts):
// it opens to the stored hash for its own client under its own SECRETS, and for nothing else,
// the first time and when opened again from memory.
import { describe, expect, it } from 'vitest';
import { hashClientSecret, openPlaceholder, revealClientMetadata } from '../../src/clients/secrets.js';
import type { ClientMetadata } from '../../src/clients/store.js';

const SECRETS = ['placeholder-test-secret-0123456789-abcdefghijklmnop'];
const OTHER_SECRETS = ['another-deployment-secret-0123456789-abcdefghijkl'];

function placeholderOf(clientId: string, secrets = SECRETS) {
  const hash = hashClientSecret(`secret of ${clientId}`, secrets);
  const stored = { client_id: clientId, client_secret_hash: hash } as unknown as ClientMetadata;
  return { hash, placeholder: revealClientMetadata(stored, secrets).metadata.client_secret as string };
}

describe('client secret placeholders', () => {
  it('open to the stored hash for their own client, again and again', () => {
    const { hash, placeholder } = placeholderOf('app-one');
    expect(placeholder).not.toBe(hash);
    expect(openPlaceholder(placeholder, 'app-one', SECRETS)).toBe(hash);
    expect(openPlaceholder(placeholder, 'app-one', SECRETS)).toBe(hash);
  });

  it('open for no other client, even once opened for their own', () => {
    const { placeholder } = placeholderOf('app-two');
    expect(openPlaceholder(placeholder, 'app-two', SECRETS)).not.toBeNull();
    expect(openPlaceholder(placeholder, 'app-three', SECRETS)).toBeNull();
  });

  it('open under no other SECRETS, even once opened under their own', () => {
    const { placeholder } = placeholderOf('app-four');
    expect(openPlaceholder(placeholder, 'app-four', SECRETS)).not.toBeNull();
    expect(openPlaceholder(placeholder, 'app-four', [...OTHER_SECRETS])).toBeNull();
  });

  it('do not open with a changed tag or hash, nor when they are something else', () => {
    const { placeholder } = placeholderOf('app-five');
    expect(openPlaceholder(placeholder, 'app-five', SECRETS)).not.toBeNull();
    const last = placeholder.at(-1) === 'A' ? 'B' : 'A';
    expect(openPlaceholder(`${placeholder.slice(0, -1)}${last}`, 'app-five', SECRETS)).toBeNull();
    const { hash: otherHash } = placeholderOf('app-six');
    const [prefix, , tag] = placeholder.split('~');
    expect(openPlaceholder(`${prefix}~${otherHash}~${tag}`, 'app-five', SECRETS)).toBeNull();
    expect(openPlaceholder(`${placeholder}~extra`, 'app-five', SECRETS)).toBeNull();
    expect(openPlaceholder('a clear secret', 'app-five', SECRETS)).toBeNull();
  });
});
