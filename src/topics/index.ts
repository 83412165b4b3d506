export { applyTopics, type ApplyTopicsOptions } from './apply.ts';
export { loadTopicDefinitions, parseTopicDefinition, checkTopicSet, topicsDir } from './definitions.ts';
export { topicName, topicNames, logicalTopicName, defaultTopicPrefix, type TopicNames } from './names.ts';
export type { TopicDefinition, TopicChange, ApplyReport } from './types.ts';
export { partitionCounts } from './partitions.ts';
