/**
 * kafkajs 2.2.4 asks a broker where a coordinator is before every call to
 * it: a transaction of a partition owner (add partitions, add offsets,
 * commit offsets, end) asks four times, each a round trip on the
 * transaction's critical path before the call itself — in a sustained
 * coordination run, 5,832 FindCoordinator requests from the coordinator
 * against 1,456 transactions, more than any other request.
 *
 * The cluster now remembers where each coordinator (of a transactional id
 * or a group) was found, and asks again when a call to that broker fails
 * in a way that leaves it in doubt (it is not the coordinator any more, it
 * is loading, the connection broke), when the broker is no longer
 * connected, or after `coordinatorCacheTtlMs`. A failed call fails as
 * before, so kafkajs and the callers retry it as they did; the retry asks
 * afresh.
 */
import { createRequire } from 'node:module';
import { kafkaErrorType } from './errors.ts';

/** How long a coordinator found is trusted without a failure saying otherwise. */
export const coordinatorCacheTtlMs = 10_000;

interface Broker {
  isConnected(): boolean;
}

interface Found {
  broker: Promise<Broker>;
  at: number;
}

interface ClusterPrototype {
  findGroupCoordinator(this: object, args: { groupId: string; coordinatorType?: number }): Promise<Broker>;
  mabeamCoordinatorCache?: true;
}

/** The broker calls that go to a coordinator: a failure of one makes its cluster ask where the coordinator is. */
const coordinatorCalls = ['initProducerId', 'addPartitionsToTxn', 'addOffsetsToTxn', 'txnOffsetCommit', 'endTxn', 'joinGroup', 'syncGroup', 'heartbeat', 'leaveGroup', 'offsetCommit', 'offsetFetch', 'describeGroups'] as const;

/**
 * Broker answers that say it is not (or not yet) the coordinator. Other
 * protocol errors (CONCURRENT_TRANSACTIONS, a fenced epoch, a rebalance)
 * come from the right broker; any other failure (a broken connection, a
 * timeout) leaves where the coordinator is in doubt.
 */
const staleAnswers = new Set(['NOT_COORDINATOR', 'NOT_COORDINATOR_FOR_GROUP', 'COORDINATOR_NOT_AVAILABLE', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS']);

function leavesCoordinatorInDoubt(error: unknown): boolean {
  const type = kafkaErrorType(error);
  return type === undefined || staleAnswers.has(type);
}

/** Each cluster's coordinators found, by type and id. */
const caches = new WeakMap<object, Map<string, Found>>();
/** For each broker (of one cluster), the keys that named it in its cluster's cache (dropped when a call to it fails). */
const namedBy = new WeakMap<Broker, { cache: Map<string, Found>; keys: Set<string> }>();

function forget(broker: Broker): void {
  const names = namedBy.get(broker);
  if (!names) return;
  namedBy.delete(broker);
  for (const key of names.keys) names.cache.delete(key);
}

export function installCoordinatorCache(): void {
  const require = createRequire(import.meta.url);
  const cluster = (require('kafkajs/src/cluster/index.js') as { prototype: ClusterPrototype }).prototype;
  if (cluster.mabeamCoordinatorCache) return;
  const find = cluster.findGroupCoordinator;
  cluster.findGroupCoordinator = function cached(this: object, args): Promise<Broker> {
    let cache = caches.get(this);
    if (!cache) caches.set(this, (cache = new Map()));
    const key = `${args.coordinatorType ?? 0}:${args.groupId}`;
    const hit = cache.get(key);
    if (hit && performance.now() - hit.at < coordinatorCacheTtlMs) {
      return hit.broker.then((broker) => {
        if (broker.isConnected()) return broker;
        if (cache.get(key) === hit) cache.delete(key);
        return cached.call(this, args);
      });
    }
    const found: Found = { broker: find.call(this, args), at: performance.now() };
    cache.set(key, found);
    const own = cache;
    found.broker.then(
      (broker) => {
        if (own.get(key) !== found) return;
        const names = namedBy.get(broker) ?? { cache: own, keys: new Set<string>() };
        names.keys.add(key);
        namedBy.set(broker, names);
      },
      () => own.get(key) === found && own.delete(key),
    );
    return found.broker;
  };
  cluster.mabeamCoordinatorCache = true;

  const broker = (require('kafkajs/src/broker/index.js') as { prototype: Record<string, (this: Broker, ...args: unknown[]) => Promise<unknown>> }).prototype;
  for (const name of coordinatorCalls) {
    const call = broker[name]!;
    broker[name] = async function (this: Broker, ...args: unknown[]) {
      try {
        return await call.apply(this, args);
      } catch (error) {
        if (leavesCoordinatorInDoubt(error)) forget(this);
        throw error;
      }
    };
  }
}
