/**
 * The AsyncAPI 3 contract of the product, generated from what it runs on:
 * topics/ (channels: address, key, partitions, replicas, cleanup policy and
 * retention, as Kafka bindings), schemas/ (messages: the Avro payloads in
 * the Confluent wire format), and security/roles.json (operations: which
 * role sends and which receives on each channel). `mabeam asyncapi` writes
 * it; the committed asyncapi.yaml is kept equal to it by a test.
 */
import { stringify } from 'yaml';
import { MabeamError } from '../errors.ts';
import type { SchemaCatalog } from '../schemas/catalog.ts';
import type { Roles, RoleName } from '../security/roles.ts';
import type { TopicDefinition } from '../topics/types.ts';

export interface AsyncApiInputs {
  version: string;
  definitions: readonly TopicDefinition[];
  catalog: SchemaCatalog;
  roles: Roles;
}

type Json = Record<string, unknown>;

const kafkaBinding = '0.5.0';
const avroFormat = 'application/vnd.apache.avro;version=1.9.0';

/** The topic settings Kafka's channel binding has fields for, typed as it wants them. */
function topicConfiguration(config: Record<string, string>): Json {
  const out: Json = {};
  const policy = config['cleanup.policy'];
  if (policy) out['cleanup.policy'] = policy.split(',').map((p) => p.trim());
  for (const key of ['retention.ms', 'retention.bytes', 'delete.retention.ms', 'max.message.bytes'] as const) {
    const value = config[key];
    if (value !== undefined && Number.isFinite(Number(value))) out[key] = Number(value);
  }
  return out;
}

/** Whether a role's read or write list names the topic (a name, a name ending in "*", or "*"). */
function names(list: readonly string[], topic: string): boolean {
  return list.some((n) => n === '*' || n === topic || (n.endsWith('*') && topic.startsWith(n.slice(0, -1))));
}


export function asyncApiDocument(inputs: AsyncApiInputs): Json {
  const definitions = [...inputs.definitions].sort((a, b) => a.name.localeCompare(b.name));
  const messages: Json = {};
  const channels: Json = {};
  for (const d of definitions) {
    const channelMessages: Json = {};
    for (const fullName of d.eventTypes) {
      const event = inputs.catalog.get(fullName);
      if (!event) throw new MabeamError('INVALID_TOPIC_DEFINITION', `topics/${d.name}.json names the event type ${fullName}, which schemas/ does not define: add its schema or remove it from eventTypes.`, { details: { topic: d.name, eventType: fullName } });
      channelMessages[event.name] = { $ref: `#/components/messages/${event.name}` };
      messages[event.name] ??= {
        name: event.name,
        title: event.name,
        summary: (event.schema['doc'] as string | undefined) ?? `The ${event.name} event.`,
        contentType: 'application/octet-stream',
        headers: { $ref: '#/components/schemas/EventHeaders' },
        payload: { schemaFormat: avroFormat, schema: event.schema },
        bindings: {
          kafka: {
            key: { type: 'string', description: `The event's key field (a topic's key names it: ${d.key} on ${d.name})` },
            schemaIdLocation: 'payload',
            schemaIdPayloadEncoding: 'confluent',
            schemaLookupStrategy: 'RecordNameStrategy',
            bindingVersion: kafkaBinding,
          },
        },
      };
    }
    channels[d.name] = {
      address: `{prefix}.${d.name}`,
      title: d.name,
      description: `${d.purpose} Keyed by ${d.key}${d.coPartitionGroup ? `; co-partitioned with the other "${d.coPartitionGroup}" topics` : ''}.`,
      parameters: { prefix: { $ref: '#/components/parameters/prefix' } },
      messages: channelMessages,
      bindings: { kafka: { partitions: d.partitions, replicas: d.replicationFactor, topicConfiguration: topicConfiguration(d.config), bindingVersion: kafkaBinding } },
    };
  }

  // Who sends and who receives what, by role; the admin may do everything and is left out.
  const operations: Json = {};
  const roles = Object.entries(inputs.roles).filter(([name]) => name !== 'admin') as Array<[RoleName, Roles[RoleName]]>;
  for (const d of definitions) {
    for (const [name, role] of roles) {
      if (names(role.write, d.name)) operations[`${name}.send.${d.name}`] = { action: 'send', channel: { $ref: `#/channels/${d.name}` }, title: `${name} sends on ${d.name}`, description: role.description, security: [{ $ref: '#/components/securitySchemes/scram' }] };
      if (names(role.read, d.name)) operations[`${name}.receive.${d.name}`] = { action: 'receive', channel: { $ref: `#/channels/${d.name}` }, title: `${name} receives from ${d.name}`, description: role.description, security: [{ $ref: '#/components/securitySchemes/scram' }] };
    }
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'MABEAM on Kafka',
      version: inputs.version,
      description:
        'Multi-agent coordination over Apache Kafka: agents are consumer groups; auctions, markets and consensus are joins of requests and answers by round id; ' +
        'every coordination step is an Avro event (Confluent wire format: magic byte 0, 4-byte schema id, Avro body) registered under its record name. ' +
        'Generated by `mabeam asyncapi` from topics/, schemas/ and security/roles.json.',
    },
    servers: {
      local: {
        host: '127.0.0.1:9092',
        protocol: 'kafka',
        description: 'The local stack (`mabeam dev up`); `mabeam dev env` prints its real port. No login.',
        bindings: { kafka: { schemaRegistryUrl: 'http://127.0.0.1:8080/apis/ccompat/v7', schemaRegistryVendor: 'apicurio', bindingVersion: kafkaBinding } },
      },
      secure: {
        host: '127.0.0.1:9092',
        protocol: 'kafka',
        description: 'The secure local stack (`mabeam --stack secure dev up --secure`): SASL/SCRAM-SHA-512 with ACLs by role (`mabeam acl apply`); the registry with HTTP basic auth.',
        security: [{ $ref: '#/components/securitySchemes/scram' }],
        bindings: { kafka: { schemaRegistryUrl: 'http://127.0.0.1:8080/apis/ccompat/v7', schemaRegistryVendor: 'apicurio', bindingVersion: kafkaBinding } },
      },
    },
    channels,
    operations,
    components: {
      parameters: { prefix: { description: 'The deployment\'s topic name prefix (`--prefix`).', default: 'mabeam' } },
      schemas: {
        EventHeaders: {
          type: 'object',
          description: 'Headers the product writes; readers never need them (the payload says everything), and records from other clients may lack them.',
          properties: {
            'mabeam-event-type': { type: 'string', description: 'The event type (short name).' },
            'mabeam-event-id': { type: 'string', description: 'The envelope\'s event id.' },
            'mabeam-instance': { type: 'string', description: 'The agent host instance that wrote it.' },
            'mabeam-sig': { type: 'string', description: 'Ed25519 signature, base64, over the key length (4 bytes), key and value.' },
            'mabeam-sig-alg': { type: 'string', enum: ['ed25519'] },
            'mabeam-key-id': { type: 'string', description: 'The signer\'s key id (its AgentRecord.keyId).' },
            traceparent: { type: 'string', description: 'W3C trace context.' },
          },
        },
      },
      messages,
      securitySchemes: { scram: { type: 'scramSha512', description: 'Kafka SASL/SCRAM-SHA-512; users and their roles with `mabeam users add NAME --role ROLE`.' } },
    },
  };
}

/** The document as YAML, stable from run to run. */
export function asyncApiYaml(inputs: AsyncApiInputs): string {
  return `# Generated by \`mabeam asyncapi\` from topics/, schemas/ and security/roles.json: do not edit.\n${stringify(asyncApiDocument(inputs), { lineWidth: 0 })}`;
}
