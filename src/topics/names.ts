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
