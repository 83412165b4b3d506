/**
 * Signed records. Kafka has no standard for this; as is common practice the
 * signature covers the exact bytes of the record's key and value — the
 * value being the Confluent-wire Avro, so the schema id is covered too —
 * and travels in headers:
 *
 * - `mabeam-sig`: the Ed25519 signature, base64;
 * - `mabeam-sig-alg`: `ed25519`;
 * - `mabeam-key-id`: the signer's key id (keys.ts keyIdOf).
 *
 * What is signed is framed so that no two records share it: the key's
 * length as 4 bytes big-endian (0xFFFFFFFF for a record without a key),
 * the key bytes, then the value bytes.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import type { IHeaders } from 'kafkajs';

export const signatureHeaders = { sig: 'mabeam-sig', alg: 'mabeam-sig-alg', keyId: 'mabeam-key-id' } as const;

export const signatureAlgorithm = 'ed25519';

type Bytes = Buffer | string | null | undefined;

const asBuffer = (b: Bytes): Buffer | null => (b === null || b === undefined ? null : typeof b === 'string' ? Buffer.from(b) : b);

/** The bytes a signature covers: key length (4 bytes, big-endian; 0xFFFFFFFF for no key) ‖ key ‖ value. */
export function signedBytes(key: Bytes, value: Bytes): Buffer {
  const k = asBuffer(key);
  const v = asBuffer(value) ?? Buffer.alloc(0);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(k === null ? 0xffffffff : k.length);
  return Buffer.concat(k === null ? [length, v] : [length, k, v]);
}

/** The Ed25519 signature of a record's key and value, base64. */
export function signRecord(key: Bytes, value: Bytes, privateKey: KeyObject): string {
  return sign(null, signedBytes(key, value), privateKey).toString('base64');
}

/** Whether `signature` (base64) is the signature of the record's key and value by `publicKey`. */
export function verifyRecord(key: Bytes, value: Bytes, signature: string, publicKey: KeyObject): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, signedBytes(key, value), publicKey, sig);
  } catch {
    return false;
  }
}

/** The headers that sign a record. */
export function signingHeaders(key: Bytes, value: Bytes, signer: { keyId: string; privateKey: KeyObject }): IHeaders {
  return { [signatureHeaders.sig]: signRecord(key, value, signer.privateKey), [signatureHeaders.alg]: signatureAlgorithm, [signatureHeaders.keyId]: signer.keyId };
}

/** A header's value as text (kafkajs hands headers over as Buffers, or arrays of them when repeated). */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  // A repeated header is ambiguous: the first is taken, and a signature check then fails if it is not the signer's.
  const one = Array.isArray(value) ? value[0] : value;
  return one === undefined ? undefined : one.toString();
}

/**
 * Whether hosts sign what they write: on unless `sign: false` is given or
 * `MABEAM_SIGNING` is `off` (or `0`, `false`, `no`).
 */
export function signingEnabled(option: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (option !== undefined) return option;
  const v = env['MABEAM_SIGNING']?.trim().toLowerCase();
  return !(v === 'off' || v === '0' || v === 'false' || v === 'no');
}

/** Whether deciders require signed answers: the option, else `MABEAM_REQUIRE_SIGNATURES` is `1` (or `on`, `true`, `yes`). Off by default. */
export function signaturesRequired(option: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (option !== undefined) return option;
  const v = env['MABEAM_REQUIRE_SIGNATURES']?.trim().toLowerCase();
  return v === '1' || v === 'on' || v === 'true' || v === 'yes';
}
