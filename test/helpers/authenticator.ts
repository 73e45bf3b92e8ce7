// A software WebAuthn authenticator: a real implementation of the protocol's authenticator and
// client side (ES256 keys from node:crypto, authenticatorData, clientDataJSON, attestation
// `none`), so server-side tests can make valid answers and spoil exactly one part of them (the
// origin, the RP ID, the challenge, the counter, the signature, user verification).
// CBOR is encoded with the same library @simplewebauthn/server decodes with.
import { createHash, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import { generateJwkPair } from '../../src/keys/signing-keys.js';

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

const FLAG = { userPresent: 0x01, userVerified: 0x04, attested: 0x40 } as const;

interface StoredCredential {
  id: Buffer;
  privateKey: KeyObject;
  rpId: string;
  userHandle: string;
  counter: number;
}

/** What a test may change in one answer; everything else is what a real authenticator would do. */
export interface Spoil {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  userVerified?: boolean;
  /** The counter to send instead of the next one. */
  counter?: number;
  /** Answer with another credential id than the key that signs. */
  credentialId?: string;
  /** Sign something else (a forged signature). */
  badSignature?: boolean;
  /** Name another owner than the one the credential was made for. */
  userHandle?: string;
}

export class SoftwareAuthenticator {
  readonly credentials: StoredCredential[] = [];

  constructor(private readonly origin: string) {}

  private clientData(type: string, challenge: string, spoil: Spoil): Buffer {
    return Buffer.from(JSON.stringify({ type: spoil.type ?? type, challenge: spoil.challenge ?? challenge, origin: spoil.origin ?? this.origin, crossOrigin: false }));
  }

  private static flags(spoil: Spoil, extra = 0) {
    return FLAG.userPresent | (spoil.userVerified === false ? 0 : FLAG.userVerified) | extra;
  }

  /** navigator.credentials.create(): a new ES256 discoverable credential, attestation none. */
  create(options: PublicKeyCredentialCreationOptionsJSON, spoil: Spoil = {}): RegistrationResponseJSON {
    // Made as Gatehouse makes its ES256 keys (generateJwkPair says why that way).
    const { privateKey: privateJwk, publicKey: jwk } = generateJwkPair('ES256');
    const privateKey = createPrivateKey({ key: privateJwk, format: 'jwk' });
    const cose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x as string, 'base64url')],
        [-3, Buffer.from(jwk.y as string, 'base64url')],
      ]),
    );
    const id = randomBytes(32);
    const rpId = spoil.rpId ?? options.rp.id ?? '';
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const counter = Buffer.alloc(4);
    const authData = Buffer.concat([sha256(rpId), Buffer.from([SoftwareAuthenticator.flags(spoil, FLAG.attested)]), counter, Buffer.alloc(16), idLength, id, Buffer.from(cose)]);
    const attestationObject = isoCBOR.encode(new Map<string, Parameters<typeof isoCBOR.encode>[0]>([['fmt', 'none'], ['attStmt', new Map<string, never>()], ['authData', authData]]));
    this.credentials.push({ id, privateKey, rpId, userHandle: options.user.id, counter: 0 });
    const idText = id.toString('base64url');
    return {
      id: idText,
      rawId: idText,
      type: 'public-key',
      response: {
        clientDataJSON: this.clientData('webauthn.create', options.challenge, spoil).toString('base64url'),
        attestationObject: Buffer.from(attestationObject).toString('base64url'),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get(): an assertion by the credential named (default: the newest one usable). */
  get(options: PublicKeyCredentialRequestOptionsJSON, spoil: Spoil = {}, which?: StoredCredential): AuthenticationResponseJSON {
    const allowed = options.allowCredentials?.map((c) => c.id);
    const credential = which ?? [...this.credentials].reverse().find((c) => c.rpId === options.rpId && (!allowed?.length || allowed.includes(c.id.toString('base64url'))));
    if (!credential) throw new Error('NotAllowedError: no credential for this RP');
    credential.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(spoil.counter ?? credential.counter);
    const authData = Buffer.concat([sha256(spoil.rpId ?? credential.rpId), Buffer.from([SoftwareAuthenticator.flags(spoil)]), counter]);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, spoil);
    const signed = Buffer.concat([authData, sha256(clientDataJSON)]);
    const signature = sign('sha256', spoil.badSignature ? Buffer.concat([signed, Buffer.from('x')]) : signed, credential.privateKey);
    const id = spoil.credentialId ?? credential.id.toString('base64url');
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: spoil.userHandle ?? credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}
