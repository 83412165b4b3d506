import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { MabeamError, describeError } from '../errors.ts';
import type { EventSchema, SchemaCatalog } from './catalog.ts';
import { subjectFor } from './subjects.ts';
import type { BasicAuth, StackEndpoints } from '../stack/types.ts';

export type RegistryClient = SchemaRegistry;

/** How long one registry request may take before it counts as unanswered (REGISTRY_UNAVAILABLE). */
export const registryRequestTimeoutMs = 10_000;

type RegistryMiddleware = NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number];

/** A registry's address and, on a secured one, its basic-auth login. */
export interface RegistryTarget {
  url: string;
  auth?: BasicAuth;
}

/** The target of an address given alone or with its login. */
export function registryTarget(target: string | RegistryTarget): RegistryTarget {
  return typeof target === 'string' ? { url: target } : target;
}

/** The target a process's endpoints name. */
export function registryTargetFor(endpoints: StackEndpoints): RegistryTarget {
  return { url: endpoints.schemaRegistryUrl, ...(endpoints.registryAuth ? { auth: endpoints.registryAuth } : {}) };
}

/** Headers that log in to the registry (none on an open one). */
export function registryHeaders(target: string | RegistryTarget): Record<string, string> {
  const { auth } = registryTarget(target);
  return auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {};
}

export function createRegistryClient(target: string | RegistryTarget, timeoutMs = registryRequestTimeoutMs): RegistryClient {
  const { url, auth } = registryTarget(target);
  // The client sets no request timeout of its own: a registry that accepts the connection and
  // never answers would stall every encode and decode behind it.
  const timeout: RegistryMiddleware = () => ({ request: (request) => request.enhance({ timeout: timeoutMs }) });
  return new SchemaRegistry({ host: url.replace(/\/+$/, ''), clientId: 'mabeam', middlewares: [timeout], ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}) }, { forSchemaOptions: {} as never });
}

/** A refusal for want of a login (401) or of a right (403), as a clear error; anything else undefined. */
export function registryAuthError(status: number | undefined, what: string, target: string | RegistryTarget): MabeamError | undefined {
  const { url, auth } = registryTarget(target);
  if (status === 401) {
    return new MabeamError(
      'REGISTRY_UNAUTHORIZED',
      auth
        ? `${what}: the schema registry at ${url} refused the login of "${auth.username}" (HTTP 401): check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD(_FILE).`
        : `${what}: the schema registry at ${url} requires a login (HTTP 401): set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD(_FILE).`,
    );
  }
  if (status === 403) {
    return new MabeamError('REGISTRY_FORBIDDEN', `${what}: the schema registry at ${url} does not allow "${auth?.username ?? 'anonymous'}" this (HTTP 403); registering schemas takes a developer or admin login.`);
  }
  return undefined;
}

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'NONE';

/** Sets a subject's compatibility level (PUT /config/{subject}); works before the subject exists. */
export async function setSubjectCompatibility(target: string | RegistryTarget, subject: string, level: Compatibility): Promise<void> {
  const { url } = registryTarget(target);
  let response: Response;
  try {
    response = await fetch(`${url.replace(/\/+$/, '')}/config/${encodeURIComponent(subject)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json', ...registryHeaders(target) },
      body: JSON.stringify({ compatibility: level }),
      signal: AbortSignal.timeout(registryRequestTimeoutMs),
    });
  } catch (error) {
    throw new MabeamError('REGISTRY_UNAVAILABLE', `The schema registry at ${url} did not answer: ${describeError(error)}`, { cause: error });
  }
  if (response.ok) return;
  const body = await response.text();
  const refused = registryAuthError(response.status, `Setting ${level} compatibility on ${subject}`, target);
  if (refused) throw refused;
  // Apicurio answers 409 when another client created the subject's rule at the same moment:
  // then the level only needs checking.
  if (response.status === 409) {
    const current = await fetch(`${url.replace(/\/+$/, '')}/config/${encodeURIComponent(subject)}`, { headers: registryHeaders(target), signal: AbortSignal.timeout(registryRequestTimeoutMs) });
    const config = current.ok ? ((await current.json()) as { compatibilityLevel?: string; compatibility?: string }) : {};
    if ((config.compatibilityLevel ?? config.compatibility) === level) return;
  }
  if (response.status >= 500) throw new MabeamError('REGISTRY_UNAVAILABLE', `Setting ${level} compatibility on ${subject} failed: HTTP ${response.status} ${body}`);
  throw new MabeamError('SCHEMA_REGISTRATION_FAILED', `Setting ${level} compatibility on ${subject} failed: HTTP ${response.status} ${body}`);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

/** No answer in time, no connection, or a server error: worth retrying later. */
function isUnavailable(error: unknown): boolean {
  const status = statusOf(error);
  // The HTTP client reports its own timeout as "Timeout (N ms)" with status 400.
  return status === undefined || status >= 500 || /Timeout \(\d+ms\)/.test(describeError(error));
}

/**
 * The id of a schema already registered under its subject, or undefined.
 * A read: once a schema is registered — the usual case — a process asks for
 * its id without writing anything, so many processes starting at once do not
 * queue on the registry's storage locks.
 */
async function registeredId(client: RegistryClient, subject: string, schema: string, target: string | RegistryTarget): Promise<number | undefined> {
  try {
    return await client.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema });
  } catch (error) {
    const refused = registryAuthError(statusOf(error), `Looking up ${subject}`, target);
    if (refused) throw refused;
    if (statusOf(error) !== 404 && (error as Error).name !== 'ConfluentSchemaRegistryError' && isUnavailable(error)) {
      throw new MabeamError('REGISTRY_UNAVAILABLE', `Looking up ${subject} failed: ${describeError(error)}`, { cause: error });
    }
    return undefined; // not registered yet (or a refusal the registration below explains)
  }
}

/**
 * Registers one schema under its subject with BACKWARD compatibility (a
 * schema already registered is only looked up). The registry refuses a change
 * that breaks compatibility (HTTP 409): that becomes SCHEMA_INCOMPATIBLE with
 * the registry's explanation.
 */
export async function registerSchema(client: RegistryClient, url: string | RegistryTarget, schema: Pick<EventSchema, 'fullName' | 'schema'>, attempts = 3): Promise<number> {
  // A registry that is briefly unavailable (a storage lock held past the request timeout while
  // many writers start at once) is asked again a little later, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await registerOnce(client, url, schema);
    } catch (error) {
      if (!(error instanceof MabeamError) || !error.retriable || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

async function registerOnce(client: RegistryClient, url: string | RegistryTarget, schema: Pick<EventSchema, 'fullName' | 'schema'>): Promise<number> {
  const subject = subjectFor(schema.fullName);
  const text = JSON.stringify(schema.schema);
  const known = await registeredId(client, subject, text, url);
  if (known !== undefined) return known;
  await setSubjectCompatibility(url, subject, 'BACKWARD');
  try {
    const { id } = await client.register({ type: SchemaType.AVRO, schema: text }, { subject, compatibility: 'BACKWARD' as never });
    return id;
  } catch (error) {
    const refused = registryAuthError(statusOf(error), `Registering ${subject}`, url);
    if (refused) throw refused;
    if (statusOf(error) === 409) {
      throw new MabeamError('SCHEMA_INCOMPATIBLE', `The registry refused ${subject}: the change breaks BACKWARD compatibility (${describeError(error)})`, {
        cause: error,
        details: { subject },
      });
    }
    if (isUnavailable(error)) {
      throw new MabeamError('REGISTRY_UNAVAILABLE', `Registering ${subject} failed: ${describeError(error)}`, { cause: error });
    }
    throw new MabeamError('SCHEMA_REGISTRATION_FAILED', `Registering ${subject} failed: ${describeError(error)}`, { cause: error });
  }
}

export interface RegistrationResult {
  fullName: string;
  subject: string;
  id: number;
}

/** Registers every event type of the catalog; idempotent (an unchanged schema keeps its id). */
export async function registerCatalog(client: RegistryClient, url: string | RegistryTarget, catalog: SchemaCatalog): Promise<RegistrationResult[]> {
  const results: RegistrationResult[] = [];
  for (const event of catalog.events.values()) {
    // The deploy step also restores each subject's BACKWARD rule, which a lookup alone would not check.
    await setSubjectCompatibility(url, subjectFor(event.fullName), 'BACKWARD');
    results.push({ fullName: event.fullName, subject: subjectFor(event.fullName), id: await registerSchema(client, url, event) });
  }
  return results;
}
