import { firstPrice } from './auctions/firstPrice.ts';
import { vickrey } from './auctions/vickrey.ts';
import { majority } from './consensus/majority.ts';
import { quorum } from './consensus/quorum.ts';
import { unanimous } from './consensus/unanimous.ts';
import { weighted } from './consensus/weighted.ts';
import { leaderElection } from './conflict/leaderElection.ts';
import { barrier } from './synchronization/barrier.ts';
import { english } from './auctions/english.ts';
import { dutch } from './auctions/dutch.ts';
import { equilibrium } from './markets/equilibrium.ts';
import { delegation } from './hierarchy/delegation.ts';
import { combinatorial } from './auctions/combinatorial.ts';
import { doubleAuction } from './markets/doubleAuction.ts';
import { weightedMean } from './negotiation/weightedMean.ts';
import { priority } from './conflict/priority.ts';
import { compromise } from './conflict/compromise.ts';
import { resourceGrant } from './grants/resourceGrant.ts';
import { ProtocolRegistry } from './registry.ts';
import type { Protocol } from './types.ts';

export const builtinProtocols: readonly Protocol[] = [firstPrice, vickrey, majority, weighted, unanimous, quorum, leaderElection, barrier, combinatorial, doubleAuction, weightedMean, priority, compromise, resourceGrant, english, dutch, equilibrium, delegation];

/** A registry holding the built-in protocols; add your own with register(). */
export function defaultProtocols(): ProtocolRegistry {
  const registry = new ProtocolRegistry();
  for (const p of builtinProtocols) registry.register(p);
  return registry;
}

const shared = defaultProtocols();

/** Adds a protocol to the process-wide registry coordinators use by default. */
export function registerProtocol(protocol: Protocol): void {
  shared.register(protocol);
}

export function sharedProtocols(): ProtocolRegistry {
  return shared;
}
