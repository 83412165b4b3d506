import { randomBytes } from 'node:crypto';
/**
 * Topic names carry a prefix so several deployments (and every test file)
 * can share one cluster: `<prefix>.<name>`.
 */
export const defaultTopicPrefix = 'mabeam';

export function topicName(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/** The logical name (`bids`) of a prefixed topic (`mabeam.bids`), or undefined if it has another prefix. */
export function logicalTopicName(prefix: string, topic: string): string | undefined {
  if (!prefix) return topic;
  return topic.startsWith(`${prefix}.`) ? topic.slice(prefix.length + 1) : undefined;
}

/** Resolves logical names to prefixed topic names, e.g. `topics.bids`. */
export type TopicNames = Readonly<Record<string, string>>;

export function topicNames(prefix: string, names: readonly string[]): TopicNames {
  return Object.freeze(Object.fromEntries(names.map((n) => [n, topicName(prefix, n)])));
}

/** The prefix of a prefixed topic name (`mabeam` of `mabeam.bids`): logical names hold no dot. */
export function prefixOfTopic(topic: string): string {
  const dot = topic.lastIndexOf('.');
  return dot < 0 ? '' : topic.slice(0, dot);
}

/**
 * A throw-away consumer group of a reader: `<prefix>.read.<label>.<random>`.
 * Every reader that joins a group only to read (to the end of a log, a view,
 * a follower, a client waiting for its answer) joins one under
 * `<prefix>.read.`: the one group prefix every role may use
 * (security/roles.json), so no role needs the groups of another.
 */
export function readerGroupId(prefix: string, label: string): string {
  const tail = label.startsWith(`${prefix}.`) ? label.slice(prefix.length + 1) : label;
  const clean = tail.replace(/[^a-zA-Z0-9._-]+/g, '-').replace(/^[.-]+|[.-]+$/g, '') || 'reader';
  return `${topicName(prefix, 'read')}.${clean}.${randomBytes(6).toString('hex')}`;
}
