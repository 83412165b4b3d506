import type { SigningKeys } from '../agents/outbox.ts';
import { agentKey, previousKey } from './keys.ts';

/** The keys a host's agents sign with, read or made; an expired one stops it here (KEY_EXPIRED). */
export function signingKeys(agentIds: Iterable<string>, dir?: string): Map<string, SigningKeys> {
  const options = dir ? { dir } : {};
  const keys = new Map<string, SigningKeys>();
  for (const id of agentIds) {
    const current = agentKey(id, options);
    const previous = previousKey(id, options);
    keys.set(id, previous && previous.keyId !== current.keyId ? { current, previous } : { current });
  }
  return keys;
}
