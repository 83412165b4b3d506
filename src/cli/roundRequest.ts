import { randomUUID } from 'node:crypto';
import { validateEvent } from '../codec/validation.ts';
import type { DecodedEvent } from '../codec/codec.ts';
import { toRoundEvent } from '../coordinator/events.ts';
import { bidRequestEvent, proposalEvent, type AuctionRequest, type ConsensusRequest } from '../coordinator/roundClient.ts';
import { MabeamError, describeError } from '../errors.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { Protocol, ProtocolKind, RoundOpen } from '../protocols/types.ts';

/**
 * `mabeam round start`: what the flags and the round file say, parsed and
 * checked before anything is produced. Pure (no broker): every problem is a
 * MabeamError INVALID_OPTIONS with a one-line message naming the flag or the
 * file field at fault.
 */

/** The flags as commander hands them over: text, lists of text for repeatable flags. */
export interface RoundFlags {
  protocol?: string;
  item?: string;
  subject?: string;
  bidders?: string[];
  voters?: string[];
  capabilities?: string[];
  reservePrice?: string;
  options?: string[];
  weights?: string;
  quorum?: string;
  deadline?: string;
  param?: string[];
  params?: string;
  roundId?: string;
  timeout?: string;
}

/** What a round is asked with, typed; from the file, the flags, or both (flags win). */
export interface RoundFields {
  protocol?: string;
  item?: unknown;
  subject?: unknown;
  bidders?: string[];
  voters?: string[];
  capabilities?: string[];
  reservePrice?: number;
  options?: string[];
  weights?: Record<string, number>;
  quorum?: number;
  deadlineMs?: number;
  parameters?: Record<string, unknown>;
  roundId?: string;
  timeoutMs?: number;
}

type Field = keyof RoundFields;

/** Where each field came from, to name it in a message: `--quorum` or `round.json: "quorum"`. */
export type FieldLabels = Partial<Record<Field, string>>;

export interface ParsedFields {
  fields: RoundFields;
  labels: FieldLabels;
}

export interface RoundPlanBase {
  protocol: Protocol;
  roundId: string;
  deadlineMs: number;
  /** How long the command waits for the outcome. */
  timeoutMs: number;
  /** The round as the coordinator will see it (toRoundEvent of the request), already validated. */
  open: RoundOpen;
}

export type RoundPlan =
  | (RoundPlanBase & { kind: 'auction'; request: AuctionRequest & { roundId: string } })
  | (RoundPlanBase & { kind: 'consensus'; request: ConsensusRequest & { roundId: string; voters: string[] } });

export const defaultDeadlineMs = 10_000;
/** The default wait for the outcome beyond the deadline. */
export const outcomeGraceMs = 30_000;

const bad = (message: string): MabeamError => new MabeamError('INVALID_OPTIONS', message);

const flagLabels: Record<Field, string> = {
  protocol: '--protocol', item: '--item', subject: '--subject', bidders: '--bidders', voters: '--voters', capabilities: '--capabilities',
  reservePrice: '--reserve-price', options: '--options', weights: '--weights', quorum: '--quorum', deadlineMs: '--deadline',
  parameters: '--params', roundId: '--round-id', timeoutMs: '--timeout',
};

/** Fields of a round file, and the flag each stands for. */
const fileKeys: Record<string, Field> = {
  protocol: 'protocol', item: 'item', subject: 'subject', bidders: 'bidders', voters: 'voters', capabilities: 'capabilities',
  reservePrice: 'reservePrice', options: 'options', weights: 'weights', quorum: 'quorum', deadline: 'deadlineMs',
  params: 'parameters', roundId: 'roundId', timeout: 'timeoutMs',
};

/** Names people reach for, from the TypeScript API and the events. */
const fileHints: Record<string, string> = {
  parameters: 'params', requiredCapabilities: 'capabilities', deadlineMs: 'deadline', timeoutMs: 'timeout', reserve: 'reservePrice',
  eligibleAgents: 'bidders', eligibleVoters: 'voters', round: 'roundId', id: 'roundId',
};

/** A duration: `500ms`, `10s`, `1.5s`, `2m`, `1h`, or a plain number of milliseconds. */
export function parseDuration(text: string, label: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  const unit = m ? ({ ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'] : undefined;
  const ms = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw bad(`${label}: expected a duration like 500ms, 10s or 2m (a plain number is milliseconds), got ${JSON.stringify(text)}`);
  return ms;
}

function parseNumber(text: string, label: string, rule: { min?: number; fraction?: boolean }): number {
  const n = text.trim() === '' ? NaN : Number(text);
  return checkNumber(n, JSON.stringify(text), label, rule);
}

function checkNumber(n: unknown, shown: string, label: string, rule: { min?: number; fraction?: boolean }): number {
  if (typeof n !== 'number' || !Number.isFinite(n)) throw bad(`${label}: expected a number, got ${shown}`);
  if (rule.fraction && !(n > 0 && n <= 1)) throw bad(`${label}: expected a fraction in (0, 1], got ${n}`);
  if (rule.min !== undefined && n < rule.min) throw bad(`${label}: expected a number of at least ${rule.min}, got ${n}`);
  return n;
}

/** Numbers that JSON parses to Infinity (1e400) would be written as null: refuse them. */
function checkFinite(value: unknown, label: string): void {
  if (typeof value === 'number' && !Number.isFinite(value)) throw bad(`${label}: ${value} is not a finite number`);
  if (Array.isArray(value)) value.forEach((v) => checkFinite(v, label));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => checkFinite(v, label));
}

/**
 * A value on the command line is JSON (`{"gpuHours":4}`, `3`, `true`) or else
 * plain text. Text that starts like JSON (`{`, `[`, `"`) must be JSON: a
 * typo there is an error, not a string.
 */
export function parseJsonOrText(text: string, label: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (/^\s*[[{"]/.test(text)) throw bad(`${label}: not valid JSON (${describeError(error)}): ${text}`);
    return text;
  }
  checkFinite(value, label);
  return value;
}

function parseJsonObject(text: string, label: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw bad(`${label}: not valid JSON (${describeError(error)}): ${text}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad(`${label}: expected a JSON object, got ${text}`);
  checkFinite(value, label);
  return value as Record<string, unknown>;
}

/** Names from comma lists (`a,b,c`; the flag may be repeated): none empty, none twice. */
export function parseNames(values: readonly string[], label: string): string[] {
  const names = values.flatMap((v) => v.split(',')).map((n) => n.trim());
  return checkNames(names, label);
}

function checkNames(names: readonly unknown[], label: string): string[] {
  if (names.length === 0 || names.every((n) => n === '')) throw bad(`${label}: names nobody (give a comma-separated list, e.g. a,b,c)`);
  const out: string[] = [];
  for (const n of names) {
    if (typeof n !== 'string' || n.trim() === '') throw bad(`${label}: ${JSON.stringify(n)} is not a name (give a comma-separated list, e.g. a,b,c)`);
    if (out.includes(n.trim())) throw bad(`${label}: names "${n.trim()}" twice`);
    out.push(n.trim());
  }
  return out;
}

/** `a=3,b=1` or a JSON object `{"a":3,"b":1}`. */
export function parseWeights(text: string, label: string): Record<string, number> {
  if (/^\s*\{/.test(text)) return checkWeights(parseJsonObject(text, label), label);
  const weights: Record<string, number> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq).trim();
    if (name === '') throw bad(`${label}: expected name=weight pairs like a=3,b=1 (or a JSON object), got ${JSON.stringify(part)}`);
    if (name in weights) throw bad(`${label}: weighs "${name}" twice`);
    weights[name] = parseNumber(part.slice(eq + 1), `${label} ${name}`, {});
  }
  if (Object.keys(weights).length === 0) throw bad(`${label}: expected name=weight pairs like a=3,b=1 (or a JSON object), got ${JSON.stringify(text)}`);
  return weights;
}

function checkWeights(value: unknown, label: string): Record<string, number> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad(`${label}: expected an object of weights like {"a":3,"b":1}`);
  for (const [name, w] of Object.entries(value)) checkNumber(w, JSON.stringify(w), `${label} ${name}`, {});
  return value as Record<string, number>;
}

/** `--param key=value`: the value is JSON when it parses (`3`, `true`, `[1,2]`), else text. */
export function parseParam(text: string): [string, unknown] {
  const eq = text.indexOf('=');
  const key = eq < 0 ? '' : text.slice(0, eq).trim();
  if (key === '') throw bad(`--param: expected key=value, got ${JSON.stringify(text)}`);
  return [key, parseJsonOrText(text.slice(eq + 1), `--param ${key}`)];
}

function checkRoundId(id: string, label: string): string {
  if (id.trim() === '' || id !== id.trim()) throw bad(`${label}: a round id must not be empty or start or end with spaces, got ${JSON.stringify(id)}`);
  return id;
}

/** The flags, typed. Unset flags are left out, so they do not override the file. */
export function parseFlags(flags: RoundFlags): ParsedFields {
  const fields: RoundFields = {};
  const labels: FieldLabels = {};
  const set = <K extends Field>(key: K, value: RoundFields[K]) => {
    fields[key] = value;
    labels[key] = flagLabels[key];
  };
  if (flags.protocol !== undefined) set('protocol', flags.protocol);
  if (flags.item !== undefined) set('item', parseJsonOrText(flags.item, '--item'));
  if (flags.subject !== undefined) set('subject', parseJsonOrText(flags.subject, '--subject'));
  if (flags.bidders !== undefined) set('bidders', parseNames(flags.bidders, '--bidders'));
  if (flags.voters !== undefined) set('voters', parseNames(flags.voters, '--voters'));
  if (flags.capabilities !== undefined) set('capabilities', parseNames(flags.capabilities, '--capabilities'));
  if (flags.options !== undefined) set('options', parseNames(flags.options, '--options'));
  if (flags.reservePrice !== undefined) set('reservePrice', parseNumber(flags.reservePrice, '--reserve-price', { min: 0 }));
  if (flags.weights !== undefined) set('weights', parseWeights(flags.weights, '--weights'));
  if (flags.quorum !== undefined) set('quorum', parseNumber(flags.quorum, '--quorum', { fraction: true }));
  if (flags.deadline !== undefined) set('deadlineMs', parseDuration(flags.deadline, '--deadline'));
  if (flags.timeout !== undefined) set('timeoutMs', parseDuration(flags.timeout, '--timeout'));
  if (flags.roundId !== undefined) set('roundId', checkRoundId(flags.roundId, '--round-id'));
  if (flags.params !== undefined || (flags.param?.length ?? 0) > 0) {
    const parameters = flags.params !== undefined ? parseJsonObject(flags.params, '--params') : {};
    for (const p of flags.param ?? []) {
      const [key, value] = parseParam(p);
      parameters[key] = value;
    }
    set('parameters', parameters);
    labels.parameters = flags.param?.length ? '--param' : '--params';
  }
  return { fields, labels };
}

/** A round file: a JSON object with the flags' fields (`deadline: "10s"`, `params: {…}`, `bidders: ["a","b"]`). */
export function parseRoundFile(text: string, path: string): ParsedFields {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw bad(`${path}: not valid JSON (${describeError(error)})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw bad(`${path}: expected a JSON object with the round's fields (protocol, item or subject, bidders or voters, …)`);
  const fields: RoundFields = {};
  const labels: FieldLabels = {};
  for (const [key, value] of Object.entries(json)) {
    const field = fileKeys[key];
    const label = `${path}: "${key}"`;
    if (!field) {
      const hint = fileHints[key] ? ` (did you mean "${fileHints[key]}"?)` : '';
      throw bad(`${path}: unknown field "${key}"${hint}; the fields are ${Object.keys(fileKeys).join(', ')}`);
    }
    if (value === null) continue;
    labels[field] = label;
    const text = (what: string): string => {
      if (typeof value !== 'string') throw bad(`${label}: expected ${what}, got ${JSON.stringify(value)}`);
      return value;
    };
    const names = (): string[] => (typeof value === 'string' ? parseNames([value], label) : Array.isArray(value) ? checkNames(value, label) : (() => { throw bad(`${label}: expected a list of names, got ${JSON.stringify(value)}`); })());
    const duration = (): number => (typeof value === 'number' ? (Number.isSafeInteger(value) && value > 0 ? value : (() => { throw bad(`${label}: expected a duration like "10s" or a whole number of milliseconds over 0, got ${value}`); })()) : parseDuration(text('a duration like "10s"'), label));
    switch (field) {
      case 'protocol': fields.protocol = text('a protocol name'); break;
      case 'item': checkFinite(value, label); fields.item = value; break;
      case 'subject': checkFinite(value, label); fields.subject = value; break;
      case 'bidders': fields.bidders = names(); break;
      case 'voters': fields.voters = names(); break;
      case 'capabilities': fields.capabilities = names(); break;
      case 'options': fields.options = names(); break;
      case 'reservePrice': fields.reservePrice = checkNumber(value, JSON.stringify(value), label, { min: 0 }); break;
      case 'quorum': fields.quorum = checkNumber(value, JSON.stringify(value), label, { fraction: true }); break;
      case 'weights': fields.weights = checkWeights(value, label); break;
      case 'deadlineMs': fields.deadlineMs = duration(); break;
      case 'timeoutMs': fields.timeoutMs = duration(); break;
      case 'roundId': fields.roundId = checkRoundId(text('a round id'), label); break;
      case 'parameters':
        if (typeof value !== 'object' || Array.isArray(value)) throw bad(`${label}: expected a JSON object of parameters, got ${JSON.stringify(value)}`);
        checkFinite(value, label);
        fields.parameters = { ...(value as Record<string, unknown>) };
        break;
    }
  }
  return { fields, labels };
}

/** The file's fields with the flags' on top; parameters merge key by key (a flag's key wins). */
export function mergeFields(file: ParsedFields | undefined, flags: ParsedFields): ParsedFields {
  if (!file) return flags;
  const fields: RoundFields = { ...file.fields, ...flags.fields };
  const labels: FieldLabels = { ...file.labels, ...flags.labels };
  if (file.fields.parameters && flags.fields.parameters) fields.parameters = { ...file.fields.parameters, ...flags.fields.parameters };
  return { fields, labels };
}

const auctionOnly: Field[] = ['item', 'bidders', 'capabilities', 'reservePrice'];
const consensusOnly: Field[] = ['subject', 'voters', 'options', 'weights', 'quorum'];

/**
 * The round to start: the protocol (from the registry) decides its kind;
 * fields of the other kind are refused; the request is built as the event
 * it will be produced as, turned into the RoundOpen a coordinator would
 * see, and checked by the event rules and by the protocol's own validate().
 */
export function planRound(parsed: ParsedFields, registry: ProtocolRegistry, options: { now?: number; producerId?: string } = {}): RoundPlan {
  const { fields, labels } = parsed;
  const known = registry.names().join(', ');
  if (fields.protocol === undefined || fields.protocol.trim() === '') throw bad(`name the protocol with --protocol (known: ${known})`);
  const protocol = registry.get(fields.protocol);
  if (!protocol) throw bad(`unknown protocol "${fields.protocol}"; known: ${known} (add your own with --protocols <module>)`);
  const kind: ProtocolKind = protocol.kind;
  const wrong = (kind === 'auction' ? consensusOnly : auctionOnly).find((f) => fields[f] !== undefined);
  if (wrong) {
    const hint = kind === 'auction' ? 'name its bidders with --bidders, describe it with --item' : 'name its voters with --voters, describe it with --subject';
    throw bad(`${labels[wrong] ?? flagLabels[wrong]} is for ${kind === 'auction' ? 'consensus' : 'auction'} rounds, and "${protocol.name}" is ${kind === 'auction' ? 'an auction' : 'a consensus'} (${hint})`);
  }
  if (kind === 'consensus' && (fields.voters === undefined || fields.voters.length === 0)) {
    throw bad(`"${protocol.name}" is a consensus: name its voters with --voters a,b,c`);
  }
  const deadlineMs = fields.deadlineMs ?? defaultDeadlineMs;
  const timeoutMs = fields.timeoutMs ?? deadlineMs + outcomeGraceMs;
  const roundId = fields.roundId ?? `${kind}-${randomUUID()}`;
  const now = options.now ?? Date.now();
  const producerId = options.producerId ?? 'mabeam-cli';
  const common = { protocol: protocol.name, roundId, deadlineMs, ...(fields.parameters ? { parameters: fields.parameters } : {}) };
  const auction = kind === 'auction'
    ? {
        ...common, item: fields.item ?? null,
        ...(fields.bidders ? { bidders: fields.bidders } : {}),
        ...(fields.capabilities ? { requiredCapabilities: fields.capabilities } : {}),
        ...(fields.reservePrice !== undefined ? { reservePrice: fields.reservePrice } : {}),
      }
    : undefined;
  const consensus = kind === 'consensus'
    ? {
        ...common, subject: fields.subject ?? null, voters: fields.voters!,
        ...(fields.options ? { options: fields.options } : {}),
        ...(fields.weights ? { weights: fields.weights } : {}),
        ...(fields.quorum !== undefined ? { quorum: fields.quorum } : {}),
      }
    : undefined;
  const decoded: DecodedEvent = auction
    ? { schemaId: 0, fullName: 'io.mabeam.events.BidRequest', type: 'BidRequest', event: bidRequestEvent(auction, producerId, now) }
    : { schemaId: 0, fullName: 'io.mabeam.events.Proposal', type: 'Proposal', event: proposalEvent(consensus!, producerId, now) };
  const problems = validateEvent(decoded.event, decoded.type);
  if (problems.length > 0) throw bad(`the ${decoded.type} would be invalid: ${problems.join('; ')}`);
  const open = toRoundEvent(decoded) as RoundOpen;
  let invalid: string | undefined;
  try {
    invalid = protocol.validate?.(open);
  } catch (error) {
    invalid = `the protocol could not check the request: ${describeError(error)}`;
  }
  if (invalid) throw bad(`"${protocol.name}" refuses this round: ${invalid}`);
  const base = { protocol, roundId, deadlineMs, timeoutMs, open };
  return auction ? { ...base, kind: 'auction', request: auction } : { ...base, kind: 'consensus', request: consensus! };
}

/** Everything in one step: the file (if any) and the flags, parsed, merged and planned. */
export function roundPlan(flags: RoundFlags, registry: ProtocolRegistry, file?: { text: string; path: string }, options: { now?: number; producerId?: string } = {}): RoundPlan {
  const fromFile = file ? parseRoundFile(file.text, file.path) : undefined;
  return planRound(mergeFields(fromFile, parseFlags(flags)), registry, options);
}
