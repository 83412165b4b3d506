import type avro from 'avsc';
import { MabeamError, describeError } from '../errors.ts';
import type { AnyEvent, EventTypeName, EventTypes } from '../events/types.ts';
import type { SchemaCatalog, EventSchema } from '../schemas/catalog.ts';
import { createRegistryClient, registerSchema, registryAuthError, registryTargetFor, type RegistryClient, type RegistryTarget } from '../schemas/registry.ts';
import type { BasicAuth, StackEndpoints } from '../stack/types.ts';
import { installAvroGuard } from './avroGuard.ts';
import { avroProblems, validateEvent } from './validation.ts';
import { encodeFramed, unframe } from './wireFormat.ts';

/** A decoded event of type K: its `event` is that type's shape. */
export interface DecodedOf<K extends EventTypeName> {
  schemaId: number;
  /** Fully qualified record name, e.g. io.mabeam.events.Bid. */
  fullName: string;
  /** Short name, e.g. Bid. */
  type: K;
  event: EventTypes[K];
}

/**
 * A decoded event: one DecodedOf per event type, so checking `type` narrows
 * `event` (after `decoded.type === 'Bid'`, `decoded.event` is a Bid).
 * DecodedEvent<'Bid' | 'Vote'> is a decoded event of one of those types.
 */
export type DecodedEvent<K extends EventTypeName = EventTypeName> = { [P in K]: DecodedOf<P> }[K];

/** An event with its type's name, `{ type, event }`, as the plan, study and round folds take them: a union by type too. */
export type TypedEvent<K extends EventTypeName = EventTypeName> = { [P in K]: { type: P; event: EventTypes[P] } }[K];

/** A decoded event's `{ type, event }`, the two still paired. */
export function typedEvent<K extends EventTypeName>(decoded: DecodedOf<K>): TypedEvent<K> {
  return { type: decoded.type, event: decoded.event } as TypedEvent<K>;
}

/** What decode<T> gives: an event the caller vouches is a T, not narrowed by `type`. */
export interface DecodedAs<T> {
  schemaId: number;
  fullName: string;
  type: EventTypeName;
  event: T;
}

/** The full names of event types K, as a topic's eventTypes name them. */
type FullNameOf<K extends EventTypeName> = `io.mabeam.events.${K}`;

export interface DecodeOptions {
  /** Fully qualified names allowed here (a topic's eventTypes); others are UNEXPECTED_EVENT_TYPE. */
  allowedTypes?: readonly string[];
}

export interface EventCodecOptions {
  registry: RegistryClient;
  registryUrl: string;
  /** The registry's login, when it requires one (for the requests the client library does not make). */
  registryAuth?: BasicAuth;
  catalog: SchemaCatalog;
}

interface ReaderPlan {
  reader: EventSchema;
  resolver: avro.Resolver;
}

/**
 * Encodes and decodes events through the schema registry in the Confluent
 * wire format. Writers register their schema once (an unchanged schema keeps
 * its id) and cache the id; readers fetch a writer schema by id once, and
 * read with their own (reader) schema, so events written by an older or newer
 * compatible schema still decode. Every failure is a MabeamError whose code
 * says what was wrong; only REGISTRY_UNAVAILABLE is retriable.
 */
installAvroGuard();

export class EventCodec {
  readonly catalog: SchemaCatalog;
  private readonly registry: RegistryClient;
  private readonly target: RegistryTarget;
  private readonly ids = new Map<string, Promise<number>>();
  private readonly plans = new Map<number, Promise<ReaderPlan>>();
  /** The plans fetched so far, for decodeNow. */
  private readonly loaded = new Map<number, ReaderPlan>();

  constructor(options: EventCodecOptions) {
    this.registry = options.registry;
    this.target = { url: options.registryUrl, ...(options.registryAuth ? { auth: options.registryAuth } : {}) };
    this.catalog = options.catalog;
  }

  private schemaFor(type: string): EventSchema {
    const schema = this.catalog.get(type);
    if (!schema) throw new MabeamError('UNKNOWN_EVENT_TYPE', `No event type "${type}" in the schema catalog.`);
    return schema;
  }

  /** The registry id of an event type's schema, registering it on first use. */
  schemaId(type: string): Promise<number> {
    const schema = this.schemaFor(type);
    let id = this.ids.get(schema.fullName);
    if (!id) {
      id = registerSchema(this.registry, this.target, schema);
      id.catch(() => this.ids.delete(schema.fullName));
      this.ids.set(schema.fullName, id);
    }
    return id;
  }

  /**
   * Checks an event against its schema and the validation rules without
   * touching the registry; an invalid event is refused with VALIDATION_FAILED
   * and the problems listed.
   */
  check(type: string, event: object): void {
    const schema = this.schemaFor(type);
    const problems = avroProblems(schema.type, event);
    if (problems.length === 0) problems.push(...validateEvent(event, schema.name));
    if (problems.length > 0) {
      throw new MabeamError('VALIDATION_FAILED', `Invalid ${schema.name}: ${problems.join('; ')}`, { details: { type: schema.fullName, problems } });
    }
  }

  /** Validates (see check) and encodes. */
  async encode(type: string, event: object): Promise<Buffer> {
    this.check(type, event);
    const schema = this.schemaFor(type);
    return encodeFramed(await this.schemaId(schema.fullName), schema.type, event);
  }

  /** Allowing only some event types (written out) narrows the result to them. */
  decode<K extends EventTypeName>(buffer: Buffer | null | undefined, options: DecodeOptions & { allowedTypes: readonly FullNameOf<K>[] }): Promise<DecodedEvent<K>>;
  decode(buffer: Buffer | null | undefined, options?: DecodeOptions): Promise<DecodedEvent>;
  /** decode<T>: the caller vouches that the event is a T. */
  decode<T>(buffer: Buffer | null | undefined, options?: DecodeOptions): Promise<DecodedAs<T>>;
  async decode(buffer: Buffer | null | undefined, options: DecodeOptions = {}): Promise<DecodedEvent> {
    const { schemaId, body } = unframe(buffer);
    return this.read(schemaId, body, await this.planFor(schemaId), options);
  }

  /**
   * decode without waiting, for readers that go through many records: the
   * event when its writer schema has been fetched already, or undefined
   * when it has not (then `decode` fetches it, and this works from then on).
   * Fails as decode does, synchronously.
   */
  decodeNow<K extends EventTypeName>(buffer: Buffer | null | undefined, options: DecodeOptions & { allowedTypes: readonly FullNameOf<K>[] }): DecodedEvent<K> | undefined;
  decodeNow(buffer: Buffer | null | undefined, options?: DecodeOptions): DecodedEvent | undefined;
  decodeNow<T>(buffer: Buffer | null | undefined, options?: DecodeOptions): DecodedAs<T> | undefined;
  decodeNow(buffer: Buffer | null | undefined, options: DecodeOptions = {}): DecodedEvent | undefined {
    const { schemaId, body } = unframe(buffer);
    const plan = this.loaded.get(schemaId);
    return plan ? this.read(schemaId, body, plan, options) : undefined;
  }

  private read(schemaId: number, body: Buffer, { reader, resolver }: ReaderPlan, options: DecodeOptions): DecodedEvent {
    if (options.allowedTypes && !options.allowedTypes.includes(reader.fullName)) {
      throw new MabeamError('UNEXPECTED_EVENT_TYPE', `${reader.fullName} is not one of the event types expected here (${options.allowedTypes.join(', ')}).`, {
        details: { schemaId, type: reader.fullName },
      });
    }
    let event: AnyEvent;
    try {
      event = reader.type.fromBuffer(body, resolver) as AnyEvent;
    } catch (error) {
      throw new MabeamError('UNDECODABLE_BODY', `The body is not a valid ${reader.name} (schema id ${schemaId}): ${describeError(error)}`, {
        cause: error,
        details: { schemaId, type: reader.fullName },
      });
    }
    const problems = validateEvent(event, reader.name);
    if (problems.length > 0) {
      throw new MabeamError('VALIDATION_FAILED', `Invalid ${reader.name}: ${problems.join('; ')}`, { details: { schemaId, type: reader.fullName, problems } });
    }
    // Where a type's name and its shape meet: the reader is the catalog's schema for reader.name.
    return { schemaId, fullName: reader.fullName, type: reader.name as EventTypeName, event } as DecodedEvent;
  }

  private planFor(schemaId: number): Promise<ReaderPlan> {
    let plan = this.plans.get(schemaId);
    if (!plan) {
      plan = this.loadPlan(schemaId);
      plan.then((loaded) => this.loaded.set(schemaId, loaded), () => undefined);
      // Only successes are cached: an id unknown now may be registered later.
      plan.catch(() => this.plans.delete(schemaId));
      this.plans.set(schemaId, plan);
    }
    return plan;
  }

  private async loadPlan(schemaId: number): Promise<ReaderPlan> {
    let writer: avro.Type;
    try {
      writer = (await this.registry.getSchema(schemaId)) as unknown as avro.Type;
    } catch (error) {
      const status = (error as { status?: number }).status;
      // A registry refusing this process's login is not the record's fault: retriable, so no
      // record is dead-lettered for it, and the message says what to fix.
      const refused = registryAuthError(status, `Fetching schema ${schemaId}`, this.target);
      if (refused) throw new MabeamError(refused.code, refused.message, { cause: error, retriable: true, details: { schemaId } });
      if (status === 404) {
        throw new MabeamError('UNKNOWN_SCHEMA_ID', `The registry has no schema with id ${schemaId}.`, { cause: error, details: { schemaId } });
      }
      throw new MabeamError('REGISTRY_UNAVAILABLE', `Fetching schema ${schemaId} failed: ${describeError(error)}`, { cause: error, details: { schemaId } });
    }
    const fullName = writer.name;
    const reader = fullName ? this.catalog.get(fullName) : undefined;
    if (!fullName || !reader) {
      throw new MabeamError('UNKNOWN_EVENT_TYPE', `Schema ${schemaId} is ${fullName ?? 'an unnamed schema'}, which is not an event type of this catalog.`, {
        details: { schemaId, type: fullName },
      });
    }
    try {
      return { reader, resolver: reader.type.createResolver(writer) };
    } catch (error) {
      throw new MabeamError('READER_SCHEMA_MISMATCH', `Events written with schema ${schemaId} cannot be read as this version of ${fullName}: ${describeError(error)}`, {
        cause: error,
        details: { schemaId, type: fullName },
      });
    }
  }
}

/** A codec for a process's endpoints: the registry at their address, with their login. */
export function codecFor(endpoints: StackEndpoints, catalog: SchemaCatalog, timeoutMs?: number): EventCodec {
  const target = registryTargetFor(endpoints);
  return new EventCodec({ registry: createRegistryClient(target, timeoutMs), registryUrl: target.url, ...(target.auth ? { registryAuth: target.auth } : {}), catalog });
}
