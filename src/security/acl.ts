import kafkajs, { type AclEntry, type Admin } from 'kafkajs';
import { MabeamError, describeError } from '../errors.ts';
import { aclKey, aclsFor, clusterResource, type Binding, type Roles } from './roles.ts';

const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;

export interface AclChange {
  user: string;
  role: string;
  created: AclEntry[];
  deleted: AclEntry[];
  unchanged: number;
}

/** Every ACL of a principal (all resources, patterns and operations). */
export async function aclsOf(admin: Admin, user: string | undefined): Promise<AclEntry[]> {
  const response = await admin.describeAcls({
    resourceType: AclResourceTypes.ANY,
    resourcePatternType: ResourcePatternTypes.ANY,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
    ...(user ? { principal: `User:${user}` } : {}),
  });
  return response.resources.flatMap((r) => r.acls.map((a) => ({ ...a, resourceType: r.resourceType, resourceName: r.resourceName, resourcePatternType: r.resourcePatternType })));
}

/** An ACL that belongs to the prefix: on a resource under `<prefix>.` (cluster ACLs belong to no prefix). */
const underPrefix = (e: AclEntry, prefix: string): boolean => e.resourceType !== AclResourceTypes.CLUSTER && e.resourceName.startsWith(`${prefix}.`);

/**
 * Makes each bound principal's ACLs under the prefix exactly what its role
 * declares: missing ones are created, ones no longer declared (a changed
 * roles file, another role) are deleted. Cluster ACLs are only added, never
 * removed: they are shared by every prefix. Idempotent.
 */
export async function applyAcls(admin: Admin, roles: Roles, bindings: readonly Binding[], prefix: string): Promise<AclChange[]> {
  const changes: AclChange[] = [];
  for (const binding of bindings) {
    const wanted = aclsFor(roles, binding, prefix);
    let existing: AclEntry[];
    try {
      existing = await aclsOf(admin, binding.user);
    } catch (error) {
      throw explainAclFailure(error, 'Reading the ACLs');
    }
    const have = new Map(existing.map((e) => [aclKey(e), e]));
    const want = new Set(wanted.map(aclKey));
    const created = wanted.filter((e) => !have.has(aclKey(e)));
    const deleted = existing.filter((e) => underPrefix(e, prefix) && !want.has(aclKey(e)));
    try {
      if (created.length > 0) await admin.createAcls({ acl: created });
      if (deleted.length > 0) await admin.deleteAcls({ filters: deleted });
    } catch (error) {
      throw explainAclFailure(error, `Applying the ACLs of ${binding.user}`);
    }
    changes.push({ user: binding.user, role: binding.role, created, deleted, unchanged: wanted.length - created.length });
  }
  return changes;
}

/** Deletes every ACL of a principal under the prefix (a removed user). */
export async function removeAcls(admin: Admin, user: string, prefix: string): Promise<AclEntry[]> {
  const gone = (await aclsOf(admin, user)).filter((e) => underPrefix(e, prefix) || e.resourceName === clusterResource);
  if (gone.length > 0) await admin.deleteAcls({ filters: gone });
  return gone;
}

function explainAclFailure(error: unknown, what: string): MabeamError {
  const text = describeError(error);
  if (/SECURITY_DISABLED|No Authorizer is configured/i.test(text)) {
    return new MabeamError('KAFKA_NOT_AUTHORIZED', `${what} failed: this cluster has no authorizer, so it has no ACLs (a plain stack; start a secure one with \`mabeam dev up --secure\`).`, { cause: error });
  }
  if (/CLUSTER_AUTHORIZATION_FAILED|not authorized/i.test(text)) {
    return new MabeamError('KAFKA_NOT_AUTHORIZED', `${what} failed: the login is not allowed to manage ACLs (it takes an admin: ALTER and DESCRIBE on the cluster).`, { cause: error });
  }
  return new MabeamError('KAFKA_NOT_AUTHORIZED', `${what} failed: ${text}`, { cause: error });
}
