/**
 * One error class for the whole product, with a closed list of stable codes.
 * Retry logic reads only `retriable`; callers branch on `code`, never on
 * message text.
 */
export const errorCodes = [
  // configuration and user input
  'INVALID_OPTIONS',
  'INVALID_TOPIC_DEFINITION',
  'INVALID_SCHEMA',
  // local stack
  'STACK_DEPENDENCY_MISSING',
  'STACK_FETCH_FAILED',
  'STACK_START_FAILED',
  'STACK_NOT_RUNNING',
  // a stack is secure or plain from its first start, and a start asked for the other
  'STACK_SECURITY_MISMATCH',
  // the containers stack (`dev up --containers`, MABEAM_TESTCONTAINERS=1) found no Docker engine that answers
  'DOCKER_UNAVAILABLE',
  // adding or removing a Kafka SCRAM user failed (other than a wrong admin login)
  'SCRAM_USER_FAILED',
  // topics
  'TOPIC_APPLY_FAILED',
  'TOPIC_PARTITIONS_SHRINK',
  // schema registry
  'REGISTRY_UNAVAILABLE',
  'SCHEMA_INCOMPATIBLE',
  'SCHEMA_REGISTRATION_FAILED',
  // security: logins, rights and keys
  'INVALID_CREDENTIALS',
  'KAFKA_AUTHENTICATION_FAILED',
  'KAFKA_NOT_AUTHORIZED',
  'REGISTRY_UNAUTHORIZED',
  'REGISTRY_FORBIDDEN',
  'KEY_EXPIRED',
  'KEY_INVALID',
  // codec: these are also the dead-letter reason codes
  'EMPTY_MESSAGE',
  'TRUNCATED_MESSAGE',
  'BAD_MAGIC_BYTE',
  'UNKNOWN_SCHEMA_ID',
  'UNKNOWN_EVENT_TYPE',
  'UNEXPECTED_EVENT_TYPE',
  'UNDECODABLE_BODY',
  'READER_SCHEMA_MISMATCH',
  'VALIDATION_FAILED',
  'HANDLER_FAILED',
  // agents
  'INVALID_AGENT',
  'ILLEGAL_TRANSITION',
  'AGENT_MODULE_INVALID',
  // signing keys (src/security/keys.ts)
  'KEY_EXPIRED',
  'KEY_INVALID',
  // a step of a plan failed (StepError); retriable says whether another attempt may succeed
  'STEP_FAILED',
  // protocols: a module given to add protocols did not
  'PROTOCOL_MODULE_INVALID',
  // reading topics (readToEnd): the end was not reached in time
  'LOG_READ_TIMEOUT',
  // audit: what was asked about is not in the log
  'NOT_IN_LOG',
  // coordination
  'ROUND_REFUSED',
  // variables: a change the owners refused (details.reasonCode says why)
  'VARIABLE_REJECTED',
  // serving (the /metrics endpoint)
  'PORT_IN_USE',
  // a generated file (asyncapi.yaml) is not what its sources give
  'OUT_OF_DATE',
  // a client or a group member was stopped (or could not join) before its work was done
  'STOPPED',
  // a supervised child failed past its restart budget, or a worker process died before its report
  'CHILD_FAILED',
  // a step of the demo did not happen as it should (the message names the step and the process's last lines)
  'DEMO_FAILED',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

const retriableCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['REGISTRY_UNAVAILABLE', 'STACK_START_FAILED', 'LOG_READ_TIMEOUT']);

export interface MabeamErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  details?: Record<string, unknown>;
}

export class MabeamError extends Error {
  override readonly name = 'MabeamError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: MabeamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? retriableCodes.has(code);
    this.details = options.details ?? {};
  }
}

export function isMabeamError(error: unknown, code?: ErrorCode): error is MabeamError {
  return error instanceof MabeamError && (code === undefined || error.code === code);
}

/** A readable one-line description of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
