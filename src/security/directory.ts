/**
 * Which public key is whose: the keys agents published in their
 * AgentRecords on the compacted `agents` topic, pinned.
 *
 * - **Trust on first use.** The first AgentRecord of an agent id that
 *   carries a key pins it, if the record is signed by that very key (so
 *   nobody can claim another agent's public key as theirs). Whoever
 *   registers an agent id first owns it: the registry's write access is
 *   what protects that first registration.
 * - **Pinned.** A later record with another key is taken only when it is
 *   signed by the pinned key, valid at that record's time (a rotation: the
 *   old key vouches for the new one). The old key then signs nothing dated
 *   at or after the rotation. Any other record is refused, so anyone who
 *   may write the registry still cannot replace another agent's key. A new
 *   notAfter for the same key likewise needs that key's signature.
 * - **Removed.** A tombstone (the agent deregistered) clears the pin.
 *
 * Pure and in memory: fed records in log order by whoever reads the topic
 * (directoryFollower.ts live, loadKeyDirectory for replay), so the same
 * topic gives the same directory.
 */
import type { KeyObject } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import type { AgentRecord } from '../events/types.ts';
import { keyIdOf, publicKeyFromBase64 } from './keys.ts';
import { headerText, signatureAlgorithm, signatureHeaders, verifyRecord } from './signing.ts';

/** A record as the log holds it: what a signature covers, its headers, and its log timestamp (ms). */
export interface SignedRecord {
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: IHeaders | undefined;
  timestamp: number;
}

/** A key the directory holds for an agent. */
export interface PinnedKey {
  agentId: string;
  keyId: string;
  publicKey: KeyObject;
  /** Epoch ms after which the key signs nothing; null for no end. */
  notAfter: number | null;
  /** Log time of the rotation that replaced it: it signs nothing dated at or after this. Null for the current key. */
  replacedAt: number | null;
}

/** What a directory answers: an agent's key by id, and whose a key id is. */
export interface KeyLookup {
  key(agentId: string, keyId: string): PinnedKey | undefined;
  /** The agent a key id was pinned for, if any. */
  owner(keyId: string): string | undefined;
}

/** What became of one AgentRecord. */
export type Applied = 'pinned' | 'same' | 'updated' | 'rotated' | 'removed' | 'no-key' | 'refused';

export class KeyDirectory implements KeyLookup {
  /** Each agent's keys, the current one last. */
  private readonly byAgent = new Map<string, PinnedKey[]>();
  private readonly owners = new Map<string, string>();
  /** Records refused (a key change not signed by the pinned key), for logs and status. */
  readonly refused: Array<{ agentId: string; keyId: string | null; timestamp: number; reason: string }> = [];

  key(agentId: string, keyId: string): PinnedKey | undefined {
    return this.byAgent.get(agentId)?.find((k) => k.keyId === keyId);
  }

  owner(keyId: string): string | undefined {
    return this.owners.get(keyId);
  }

  /** The key an agent signs with now. */
  current(agentId: string): PinnedKey | undefined {
    const keys = this.byAgent.get(agentId);
    return keys?.[keys.length - 1];
  }

  get size(): number {
    return this.byAgent.size;
  }

  /** A tombstone of the agents topic: the agent is gone and its pin with it. */
  remove(agentId: string): Applied {
    for (const k of this.byAgent.get(agentId) ?? []) if (this.owners.get(k.keyId) === agentId) this.owners.delete(k.keyId);
    this.byAgent.delete(agentId);
    return 'removed';
  }

  /** One AgentRecord of the agents topic, in log order, with the record it came in (for its signature). */
  apply(event: AgentRecord, record: SignedRecord): Applied {
    const agentId = event.agentId;
    const pinned = this.current(agentId);
    if (!event.publicKey) return pinned ? 'same' : 'no-key';
    const publicKey = publicKeyFromBase64(event.publicKey);
    if (!publicKey) return this.refuse(agentId, null, record, 'its publicKey is not a raw Ed25519 key in base64');
    const keyId = keyIdOf(Buffer.from(event.publicKey, 'base64'));
    const notAfter = event.keyNotAfter ?? null;
    const signer = signerOf(record);
    if (!pinned) {
      // Proof of possession: the first record of a key is signed by it.
      if (signer?.keyId !== keyId || !verifyRecord(record.key, record.value, signer.sig, publicKey)) return this.refuse(agentId, keyId, record, 'a first key must sign the record that publishes it');
      if (this.owners.has(keyId) && this.owners.get(keyId) !== agentId) return this.refuse(agentId, keyId, record, `the key is pinned for agent ${this.owners.get(keyId)}`);
      this.byAgent.set(agentId, [{ agentId, keyId, publicKey, notAfter, replacedAt: null }]);
      this.owners.set(keyId, agentId);
      return 'pinned';
    }
    const vouched = signer !== undefined && signer.keyId === pinned.keyId && verifyRecord(record.key, record.value, signer.sig, pinned.publicKey) && (pinned.notAfter === null || record.timestamp <= pinned.notAfter);
    if (keyId === pinned.keyId) {
      if (notAfter === pinned.notAfter) return 'same';
      if (!vouched) return this.refuse(agentId, keyId, record, 'a new notAfter must be signed by the key');
      pinned.notAfter = notAfter;
      return 'updated';
    }
    if (!vouched) return this.refuse(agentId, keyId, record, `a new key must be signed by the pinned key ${pinned.keyId}`);
    if (this.owners.has(keyId) && this.owners.get(keyId) !== agentId) return this.refuse(agentId, keyId, record, `the key is pinned for agent ${this.owners.get(keyId)}`);
    pinned.replacedAt = record.timestamp;
    this.byAgent.get(agentId)!.push({ agentId, keyId, publicKey, notAfter, replacedAt: null });
    this.owners.set(keyId, agentId);
    return 'rotated';
  }

  private refuse(agentId: string, keyId: string | null, record: SignedRecord, reason: string): Applied {
    this.refused.push({ agentId, keyId, timestamp: record.timestamp, reason });
    return 'refused';
  }
}

/** The signature headers of a record, if it has an Ed25519 signature and a key id. */
export function signerOf(record: Pick<SignedRecord, 'headers'>): { sig: string; keyId: string } | undefined {
  const sig = headerText(record.headers, signatureHeaders.sig);
  const keyId = headerText(record.headers, signatureHeaders.keyId);
  const alg = headerText(record.headers, signatureHeaders.alg);
  if (!sig || !keyId || alg !== signatureAlgorithm) return undefined;
  return { sig, keyId };
}
