import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs, { type AclEntry, type AclOperationTypes as Operation, type AclResourceTypes as ResourceType, type ResourcePatternTypes as PatternType } from 'kafkajs';
import { z } from 'zod';
import { MabeamError } from '../errors.ts';

/**
 * Roles: who may say what. The declarative file (security/roles.json) names,
 * per role, the topics it reads and writes, the groups it joins or only
 * describes, its transactional ids and its cluster operations; `aclsFor`
 * turns one principal's binding into the Kafka ACLs that say exactly that,
 * under one topic prefix. Nothing else is allowed: the broker's authorizer
 * denies what no ACL allows.
 */

const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;

export const roleNames = ['admin', 'coordinator', 'owner', 'planner', 'optimizer', 'agent', 'client'] as const;
export type RoleName = (typeof roleNames)[number];

const name = z.string().regex(/^(\*|[a-z0-9{}.-]+\*?)$/, 'a name under the prefix, "*" for all, or a name ending in "*" for a prefix');
const clusterOperation = z.enum(['DESCRIBE', 'CREATE', 'ALTER', 'DESCRIBE_CONFIGS', 'ALTER_CONFIGS', 'IDEMPOTENT_WRITE']);

const roleSchema = z
  .object({
    description: z.string(),
    read: z.array(name),
    write: z.array(name),
    groups: z.array(name).default([]),
    describeGroups: z.array(name).default([]),
    transactionalIds: z.array(name).default([]),
    cluster: z.array(clusterOperation).default([]),
    /** Topics: every operation (create, configure, delete), not only read and write. */
    topicAdmin: z.boolean().default(false),
  })
  .strict();

const fileSchema = z.object({ $comment: z.string().optional(), roles: z.record(z.enum(roleNames), roleSchema) }).strict();

export type Role = z.output<typeof roleSchema>;
export type Roles = Record<RoleName, Role>;

/** Who a principal is and what it is for. `pools`: the agent pools it runs (agents only; default its own name). */
export interface Binding {
  user: string;
  role: RoleName;
  pools?: string[];
}

export const rolesFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'security', 'roles.json');

export async function loadRoles(file = rolesFile): Promise<Roles> {
  const parsed = fileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) {
    throw new MabeamError('INVALID_OPTIONS', `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const missing = roleNames.filter((r) => !parsed.data.roles[r]);
  if (missing.length > 0) throw new MabeamError('INVALID_OPTIONS', `${file} declares no role ${missing.join(', ')}`);
  return parsed.data.roles as Roles;
}

export function isRoleName(value: string): value is RoleName {
  return (roleNames as readonly string[]).includes(value);
}

const principalOf = (user: string): string => `User:${user}`;

/** A name of the file as a resource under the prefix: "*" is the whole prefix, "x*" a prefix, else the name itself. */
function resource(prefix: string, entry: string): { resourceName: string; resourcePatternType: PatternType } {
  if (entry === '*') return { resourceName: `${prefix}.`, resourcePatternType: ResourcePatternTypes.PREFIXED };
  if (entry.endsWith('*')) return { resourceName: `${prefix}.${entry.slice(0, -1)}`, resourcePatternType: ResourcePatternTypes.PREFIXED };
  return { resourceName: `${prefix}.${entry}`, resourcePatternType: ResourcePatternTypes.LITERAL };
}

/** The kafka-cluster resource, which cluster operations are checked on. */
export const clusterResource = 'kafka-cluster';

/** The ACLs a binding needs under `prefix`, deduplicated. */
export function aclsFor(roles: Roles, binding: Binding, prefix: string): AclEntry[] {
  const role = roles[binding.role];
  if (!role) throw new MabeamError('INVALID_OPTIONS', `No role "${binding.role}"; the roles are ${roleNames.join(', ')}.`);
  const pools = binding.pools && binding.pools.length > 0 ? binding.pools : [binding.user];
  const expand = (entries: readonly string[]): string[] => entries.flatMap((e) => (e.includes('{pool}') ? pools.map((p) => e.replaceAll('{pool}', p)) : [e]));
  const principal = principalOf(binding.user);
  const entries: AclEntry[] = [];
  const allow = (resourceType: ResourceType, entry: string, operation: Operation): void => {
    entries.push({ resourceType, ...resource(prefix, entry), principal, host: '*', operation, permissionType: AclPermissionTypes.ALLOW });
  };
  if (role.topicAdmin) allow(AclResourceTypes.TOPIC, '*', AclOperationTypes.ALL);
  for (const topic of role.read) allow(AclResourceTypes.TOPIC, topic, AclOperationTypes.READ);
  // Every role may write dead letters: any reader may meet a record it cannot decode.
  for (const topic of new Set([...role.write, 'dead-letters'])) allow(AclResourceTypes.TOPIC, topic, AclOperationTypes.WRITE);
  for (const group of expand(role.groups)) allow(AclResourceTypes.GROUP, group, AclOperationTypes.READ);
  for (const group of expand(role.describeGroups)) allow(AclResourceTypes.GROUP, group, AclOperationTypes.DESCRIBE);
  for (const id of expand(role.transactionalIds)) allow(AclResourceTypes.TRANSACTIONAL_ID, id, AclOperationTypes.WRITE);
  for (const operation of role.cluster) {
    entries.push({
      resourceType: AclResourceTypes.CLUSTER, resourceName: clusterResource, resourcePatternType: ResourcePatternTypes.LITERAL,
      principal, host: '*', operation: AclOperationTypes[operation], permissionType: AclPermissionTypes.ALLOW,
    });
  }
  const seen = new Set<string>();
  return entries.filter((e) => {
    const id = aclKey(e);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Identifies an ACL (for comparing what is with what should be). */
export function aclKey(e: AclEntry): string {
  return [e.principal, e.host, e.resourceType, e.resourcePatternType, e.resourceName, e.operation, e.permissionType].join('|');
}

/** An ACL in words: `READ topic mabeam.bids`, `WRITE transactional-id mabeam.coordinators.* (prefix)`. */
export function describeAcl(e: AclEntry): string {
  const type = ({ [AclResourceTypes.TOPIC]: 'topic', [AclResourceTypes.GROUP]: 'group', [AclResourceTypes.TRANSACTIONAL_ID]: 'transactional-id', [AclResourceTypes.CLUSTER]: 'cluster' } as Record<number, string>)[e.resourceType] ?? `resource ${e.resourceType}`;
  // kafkajs's enums are plain objects at run time, without reverse mappings.
  const operation = Object.entries(AclOperationTypes).find(([, v]) => v === e.operation)?.[0] ?? String(e.operation);
  const permission = e.permissionType === AclPermissionTypes.DENY ? 'DENY ' : '';
  return `${permission}${operation} ${type} ${e.resourceName}${e.resourcePatternType === ResourcePatternTypes.PREFIXED ? '* (prefix)' : ''}`;
}
