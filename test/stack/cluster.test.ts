import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { brokerAnswered, brokerProperties } from '../../src/stack/kafka.ts';
import { resolveStackOptions } from '../../src/stack/options.ts';
import { isKafkaService, kafkaServiceNames } from '../../src/stack/types.ts';

const parse = (props: string) => Object.fromEntries(props.split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));

describe('a replicated local cluster', () => {
  it('makes each node broker and controller of one quorum, and replicates the internal topics 3 times with 2 in sync', () => {
    const nodes = [1, 2, 3].map((nodeId) => parse(brokerProperties({ port: 9000 + nodeId, controllerPort: 9100 + nodeId, dataDir: `/d${nodeId}`, cluster: { nodeId, controllerPorts: [9101, 9102, 9103], clusterId: 'c' } })));
    expect(nodes.map((n) => n['node.id'])).toEqual(['1', '2', '3']);
    for (const n of nodes) {
      expect(n['process.roles']).toBe('broker,controller');
      expect(n['controller.quorum.voters']).toBe('1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103');
      expect(n).toMatchObject({ 'offsets.topic.replication.factor': '3', 'transaction.state.log.replication.factor': '3', 'transaction.state.log.min.isr': '2', 'default.replication.factor': '3', 'min.insync.replicas': '2' });
    }
    expect(nodes[1]!['listeners']).toBe('PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102');
  });

  it('leaves a single node as it was: one replica of everything', () => {
    const single = parse(brokerProperties({ port: 9001, controllerPort: 9101, dataDir: '/d' }));
    expect(single).toMatchObject({ 'node.id': '1', 'controller.quorum.voters': '1@127.0.0.1:9101', 'offsets.topic.replication.factor': '1', 'transaction.state.log.min.isr': '1', 'min.insync.replicas': '1' });
    expect(single['broker.session.timeout.ms']).toBeUndefined();
  });

  it('names its nodes kafka, kafka-2, kafka-3 and takes 1, 3 or 5 of them', () => {
    expect(kafkaServiceNames(3)).toEqual(['kafka', 'kafka-2', 'kafka-3']);
    expect(['kafka', 'kafka-2', 'registry', 'redis'].map((n) => isKafkaService(n as 'kafka'))).toEqual([true, true, false, false]);
    expect(resolveStackOptions({ brokers: 3 }).brokers).toBe(3);
    expect(() => resolveStackOptions({ brokers: 2 as 3 })).toThrow(/brokers/);
  });

  it('listens on and advertises another address for other hosts, its controller on loopback', () => {
    const node = parse(brokerProperties({ port: 9001, controllerPort: 9101, dataDir: '/d', host: '10.77.0.1' }));
    expect(node['listeners']).toBe('PLAINTEXT://10.77.0.1:9001,CONTROLLER://127.0.0.1:9101');
    expect(node['advertised.listeners']).toBe('PLAINTEXT://10.77.0.1:9001');
    expect(resolveStackOptions({}).host).toBe('127.0.0.1');
    expect(() => resolveStackOptions({ host: 'example.org' })).toThrow(/host/);
  });
});

describe('a node of a cluster that lost another node', () => {
  // kafkajs's own error classes, as its admin client throws them.
  const require = createRequire(import.meta.url);
  const errors = require('kafkajs/src/errors.js') as { KafkaJSNumberOfRetriesExceeded: new (e: Error, o: object) => Error; KafkaJSConnectionError: new (m: string) => Error };
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => Error };
  const retried = (e: Error) => new errors.KafkaJSNumberOfRetriesExceeded(e, { retryCount: 0, retryTime: 100 });

  it('counts as running when it answers with a protocol error (LEADER_NOT_AVAILABLE while some partition has no leader)', () => {
    expect(brokerAnswered(retried(createErrorFromCode(5)))).toBe(true);
    expect(brokerAnswered(createErrorFromCode(5))).toBe(true);
  });

  it('does not when nothing answered', () => {
    expect(brokerAnswered(retried(new errors.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092')))).toBe(false);
    expect(brokerAnswered(new Error('timed out'))).toBe(false);
  });
});
