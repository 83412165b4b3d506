/**
 * Signing and verifying records, the key files, and the pinned key
 * directory: pure, no broker.
 */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IHeaders } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { AgentRecord } from '../../src/events/types.ts';
import { KeyDirectory, type SignedRecord } from '../../src/security/directory.ts';
import { agentKey, createKey, keyIdOf, previousKey, publicKeyFromBase64, rawPublicKey, readKey, type AgentKey } from '../../src/security/keys.ts';
import { signatureHeaders, signedBytes, signingHeaders, signRecord, verifyRecord } from '../../src/security/signing.ts';
import { checkSignature } from '../../src/security/verify.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'mabeam-keys-'));
const value = Buffer.from([0, 0, 0, 0, 7, 1, 2, 3, 4]);

describe('framing and signatures', () => {
  it('frames key length, key and value so that no two records share the signed bytes', () => {
    expect(signedBytes('ab', Buffer.from('c'))).toEqual(Buffer.from([0, 0, 0, 2, 0x61, 0x62, 0x63]));
    expect(signedBytes(null, Buffer.from('c'))).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x63]));
    // Moving a byte from the key to the value changes what is signed.
    expect(signedBytes('a', Buffer.from('bc')).equals(signedBytes('ab', Buffer.from('c')))).toBe(false);
    expect(signedBytes('', Buffer.from('x')).equals(signedBytes(null, Buffer.from('x')))).toBe(false);
  });

  it('verifies the record it signed, and nothing tampered or signed by another key', () => {
    const d = dir();
    const key = createKey('alice', { dir: d });
    const other = createKey('mallory', { dir: d });
    const sig = signRecord('round-1', value, key.privateKey);
    expect(Buffer.from(sig, 'base64')).toHaveLength(64);
    expect(verifyRecord('round-1', value, sig, key.publicKey)).toBe(true);
    const tampered = Buffer.from(value);
    tampered[4] = 8; // the schema id
    expect(verifyRecord('round-1', tampered, sig, key.publicKey)).toBe(false);
    expect(verifyRecord('round-2', value, sig, key.publicKey)).toBe(false);
    expect(verifyRecord('round-1', value, sig, other.publicKey)).toBe(false);
    expect(verifyRecord('round-1', value, signRecord('round-1', value, other.privateKey), key.publicKey)).toBe(false);
    expect(verifyRecord('round-1', value, 'not base64 at all', key.publicKey)).toBe(false);
  });
});

describe('key files', () => {
  it('makes a key on first use, mode 0600 in a 0700 directory, and reads the same one again', () => {
    const d = join(dir(), 'nested');
    const first = agentKey('a-1', { dir: d });
    expect(statSync(join(d, 'a-1.key')).mode & 0o777).toBe(0o600);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(d, 'a-1.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const info = JSON.parse(readFileSync(join(d, 'a-1.json'), 'utf8')) as { keyId: string; notAfter: string | null; publicKey: string };
    expect(info).toMatchObject({ keyId: first.keyId, notAfter: null, publicKey: first.publicKeyBase64 });
    const again = agentKey('a-1', { dir: d });
    expect(again.keyId).toBe(first.keyId);
    expect(first.keyId).toBe(keyIdOf(rawPublicKey(first.publicKey)));
    expect(first.keyId).toHaveLength(16);
    expect(publicKeyFromBase64(first.publicKeyBase64)!.equals(first.publicKey)).toBe(true);
  });

  it('refuses to start with an expired key, saying how to make a new one; a rotation keeps the old key as the previous one', () => {
    const d = dir();
    const old = createKey('b', { dir: d, notAfter: '2020-01-01T00:00:00Z' });
    let error: unknown;
    try {
      agentKey('b', { dir: d });
    } catch (e) {
      error = e;
    }
    expect(isMabeamError(error, 'KEY_EXPIRED')).toBe(true);
    expect((error as Error).message).toMatch(/expired at 2020-01-01T00:00:00\.000Z.*mabeam agents key b --new/);
    const fresh = createKey('b', { dir: d, rotate: true });
    expect(agentKey('b', { dir: d }).keyId).toBe(fresh.keyId);
    expect(readKey('b', { dir: d, which: 'previous' })!.keyId).toBe(old.keyId);
    // An expired previous key vouches for nothing.
    expect(previousKey('b', { dir: d })).toBeUndefined();
    expect(() => createKey('b', { dir: d })).toThrow(/already has a key/);
  });

  it('says what is wrong with a damaged key file', () => {
    const d = dir();
    createKey('c', { dir: d });
    writeFileSync(join(d, 'c.key'), 'garbage');
    expect(() => readKey('c', { dir: d })).toThrow(/does not hold a private key/);
    expect(() => readKey('../etc', { dir: d })).toThrow(/not an agent id/);
    expect(existsSync(join(d, 'c.json'))).toBe(true);
  });
});

/** An AgentRecord as the agents topic holds it, signed by `signer` (or not). */
function registration(agentId: string, key: AgentKey | null, signer: AgentKey | null, timestamp: number, notAfter: number | null = null): { event: AgentRecord; record: SignedRecord } {
  const event: AgentRecord = {
    envelope: newEnvelope('AgentRecord', 'host', { correlationId: agentId }), agentId, role: 'worker', capabilities: [], resources: {}, consumerGroup: 'g', metadata: {},
    publicKey: key?.publicKeyBase64 ?? null, keyId: key?.keyId ?? null, keyNotAfter: notAfter,
  };
  const bytes = Buffer.from(JSON.stringify(event));
  return { event, record: { key: agentId, value: bytes, headers: signer ? signingHeaders(agentId, bytes, signer) : {}, timestamp } };
}

function signed(roundId: string, bytes: Buffer, signer: AgentKey, timestamp: number, headers: IHeaders = {}): SignedRecord {
  return { key: roundId, value: bytes, headers: { ...signingHeaders(roundId, bytes, signer), ...headers }, timestamp };
}

describe('key directory and checkSignature', () => {
  const d = dir();
  const alice = createKey('alice', { dir: d });
  const bob = createKey('bob', { dir: d });
  const mallory = createKey('mallory', { dir: d });

  it('pins a key on first use (signed by itself), refuses another key not signed by the pinned one, takes a rotation, forgets on a tombstone', () => {
    const keys = new KeyDirectory();
    // A first record must prove it holds the key it publishes.
    const unsigned = registration('alice', alice, null, 1);
    expect(keys.apply(unsigned.event, unsigned.record)).toBe('refused');
    const first = registration('alice', alice, alice, 2);
    expect(keys.apply(first.event, first.record)).toBe('pinned');
    // Anyone who may write the registry cannot replace alice's key.
    const takeover = registration('alice', mallory, mallory, 3);
    expect(keys.apply(takeover.event, takeover.record)).toBe('refused');
    expect(keys.current('alice')!.keyId).toBe(alice.keyId);
    // A record without a key does not unpin.
    const keyless = registration('alice', null, null, 4);
    expect(keys.apply(keyless.event, keyless.record)).toBe('same');
    // The pinned key vouches for its successor.
    const next = createKey('alice2', { dir: d });
    const rotation = registration('alice', next, alice, 10);
    expect(keys.apply(rotation.event, rotation.record)).toBe('rotated');
    expect(keys.current('alice')!.keyId).toBe(next.keyId);
    // The old key signs what is dated before the rotation, not after.
    expect(checkSignature(signed('r', value, alice, 9), 'alice', keys)).toBeUndefined();
    expect(checkSignature(signed('r', value, alice, 10), 'alice', keys)).toMatchObject({ reasonCode: 'KEY_EXPIRED' });
    expect(checkSignature(signed('r', value, next, 11), 'alice', keys)).toBeUndefined();
    keys.remove('alice');
    expect(checkSignature(signed('r', value, next, 11), 'alice', keys)).toMatchObject({ reasonCode: 'UNKNOWN_KEY' });
    const again = registration('alice', mallory, mallory, 12);
    expect(keys.apply(again.event, again.record)).toBe('pinned');
  });

  it('refuses unsigned, tampered, other agents\', unknown and expired signatures with their reason codes', () => {
    const keys = new KeyDirectory();
    for (const [id, key, notAfter] of [['alice', alice, null], ['bob', bob, 1_000]] as const) {
      const r = registration(id, key, key, 1, notAfter);
      expect(keys.apply(r.event, r.record)).toBe('pinned');
    }
    expect(checkSignature(signed('r', value, alice, 5), 'alice', keys)).toBeUndefined();
    expect(checkSignature({ key: 'r', value, headers: {}, timestamp: 5 }, 'alice', keys)).toMatchObject({ reasonCode: 'FORGED', reason: expect.stringMatching(/not signed/) });
    const tampered = Buffer.from(value);
    tampered[8] = 9;
    expect(checkSignature({ ...signed('r', value, alice, 5), value: tampered }, 'alice', keys)).toMatchObject({ reasonCode: 'FORGED', reason: expect.stringMatching(/does not verify/) });
    expect(checkSignature({ ...signed('r', value, alice, 5), key: 'other-round' }, 'alice', keys)).toMatchObject({ reasonCode: 'FORGED' });
    // Bob's key, claiming to be alice.
    expect(checkSignature(signed('r', value, bob, 5), 'alice', keys)).toMatchObject({ reasonCode: 'FORGED', reason: expect.stringMatching(/key .* of agent bob/) });
    // A key nobody registered.
    expect(checkSignature(signed('r', value, mallory, 5), 'alice', keys)).toMatchObject({ reasonCode: 'UNKNOWN_KEY' });
    // A key id that names alice's key but a signature by another: the signature decides.
    expect(checkSignature(signed('r', value, mallory, 5, { [signatureHeaders.keyId]: alice.keyId }), 'alice', keys)).toMatchObject({ reasonCode: 'FORGED' });
    expect(checkSignature(signed('r', value, alice, 5, { [signatureHeaders.alg]: 'hmac' }), 'alice', keys)).toMatchObject({ reasonCode: 'FORGED' });
    // Expiry is judged at the record's log time.
    expect(checkSignature(signed('r', value, bob, 1_000), 'bob', keys)).toBeUndefined();
    expect(checkSignature(signed('r', value, bob, 1_001), 'bob', keys)).toMatchObject({ reasonCode: 'KEY_EXPIRED' });
    // Extending a key's notAfter takes its own signature.
    const extended = registration('bob', bob, null, 2, 5_000);
    expect(keys.apply(extended.event, extended.record)).toBe('refused');
    const vouched = registration('bob', bob, bob, 2, 5_000);
    expect(keys.apply(vouched.event, vouched.record)).toBe('updated');
    expect(checkSignature(signed('r', value, bob, 1_001), 'bob', keys)).toBeUndefined();
  });
});
