/**
 * The one check of a signed answer, shared by the deciders (live) and by
 * replay: given the record as the log holds it (key and value bytes,
 * headers, log timestamp), the agent the event claims to come from, and a
 * key directory, either nothing (it is that agent's) or why it is refused.
 * Pure: the same record and directory give the same answer anywhere, and
 * expiry is judged at the record's log time, not the reader's clock.
 */
import type { KeyLookup, SignedRecord } from './directory.ts';
import { headerText, signatureAlgorithm, signatureHeaders, verifyRecord } from './signing.ts';

export const signatureRefusalCodes = ['FORGED', 'UNKNOWN_KEY', 'KEY_EXPIRED'] as const;
export type SignatureRefusalCode = (typeof signatureRefusalCodes)[number];

export interface SignatureRefusal {
  reasonCode: SignatureRefusalCode;
  reason: string;
}

export function isSignatureRefusalCode(code: string): code is SignatureRefusalCode {
  return (signatureRefusalCodes as readonly string[]).includes(code);
}

export function checkSignature(record: SignedRecord, agentId: string, directory: KeyLookup): SignatureRefusal | undefined {
  const sig = headerText(record.headers, signatureHeaders.sig);
  if (!sig) return { reasonCode: 'FORGED', reason: `It claims to come from agent ${agentId} but is not signed (no ${signatureHeaders.sig} header).` };
  const alg = headerText(record.headers, signatureHeaders.alg);
  if (alg !== signatureAlgorithm) return { reasonCode: 'FORGED', reason: `Its signature algorithm is ${alg === undefined ? 'not given' : `"${alg}"`}, not ${signatureAlgorithm}.` };
  const keyId = headerText(record.headers, signatureHeaders.keyId);
  if (!keyId) return { reasonCode: 'FORGED', reason: `Its signature names no key (no ${signatureHeaders.keyId} header).` };
  const key = directory.key(agentId, keyId);
  if (!key) {
    const owner = directory.owner(keyId);
    if (owner !== undefined && owner !== agentId) return { reasonCode: 'FORGED', reason: `It claims to come from agent ${agentId} but is signed with the key ${keyId} of agent ${owner}.` };
    return { reasonCode: 'UNKNOWN_KEY', reason: `The key ${keyId} is not registered for agent ${agentId}.` };
  }
  if (!verifyRecord(record.key, record.value, sig, key.publicKey)) return { reasonCode: 'FORGED', reason: `Its signature does not verify with the key ${keyId} of agent ${agentId}.` };
  if (key.replacedAt !== null && record.timestamp >= key.replacedAt) {
    return { reasonCode: 'KEY_EXPIRED', reason: `The key ${keyId} of agent ${agentId} was replaced at ${new Date(key.replacedAt).toISOString()}, before the record's time ${new Date(record.timestamp).toISOString()}.` };
  }
  if (key.notAfter !== null && record.timestamp > key.notAfter) {
    return { reasonCode: 'KEY_EXPIRED', reason: `The key ${keyId} of agent ${agentId} expired at ${new Date(key.notAfter).toISOString()}, before the record's time ${new Date(record.timestamp).toISOString()}.` };
  }
  return undefined;
}
