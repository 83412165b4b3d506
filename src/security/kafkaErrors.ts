import { MabeamError, describeError } from '../errors.ts';

/** What a process is logged in as, for messages (the environment's or the stack's login). */
export interface LoginHint {
  user?: string;
}

/** The login this process was given in its environment, if any. */
export function loginHint(env: Record<string, string | undefined> = process.env): LoginHint {
  const user = env['KAFKA_SASL_USERNAME'];
  return user ? { user } : {};
}

/** The kafkajs error types and names along an error's cause chain. */
function kinds(error: unknown): { types: Set<string>; names: Set<string>; text: string } {
  const types = new Set<string>();
  const names = new Set<string>();
  const texts: string[] = [];
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError, depth++) {
    const { type, name, message } = e as { type?: unknown; name?: unknown; message?: unknown };
    if (typeof type === 'string') types.add(type);
    if (typeof name === 'string') names.add(name);
    if (typeof message === 'string') texts.push(message);
  }
  return { types, names, text: texts.join(' / ') };
}

const denied: Record<string, string> = {
  TOPIC_AUTHORIZATION_FAILED: 'a topic',
  GROUP_AUTHORIZATION_FAILED: 'a consumer group',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'a transactional id',
  CLUSTER_AUTHORIZATION_FAILED: 'a cluster operation',
};

/**
 * A Kafka failure caused by a login or a missing right, said plainly; other
 * errors undefined. kafkajs reports a consumer group the ACLs deny as "group
 * coordinator not found" (it asks for the coordinator, is refused, and
 * retries as if none were elected): on a cluster with logins that is said as
 * the likely denial it is.
 */
export function explainKafkaError(error: unknown, login: LoginHint = {}): MabeamError | undefined {
  if (error instanceof MabeamError && (error.code === 'KAFKA_AUTHENTICATION_FAILED' || error.code === 'KAFKA_NOT_AUTHORIZED')) return error;
  const { types, names, text } = kinds(error);
  const who = login.user ? `"${login.user}"` : 'this client';
  const check = login.user ? ` See what it may do with \`mabeam acl list --user ${login.user}\`; \`mabeam acl apply\` gives each role its rights.` : '';
  if (names.has('KafkaJSSASLAuthenticationError') || types.has('SASL_AUTHENTICATION_FAILED') || /SASL .* authentication failed/i.test(text)) {
    return new MabeamError(
      'KAFKA_AUTHENTICATION_FAILED',
      `Kafka refused the login of ${who}: unknown user or wrong password. Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE). (${text})`,
      { cause: error },
    );
  }
  if (types.has('UNSUPPORTED_SASL_MECHANISM') || types.has('ILLEGAL_SASL_STATE')) {
    return new MabeamError('KAFKA_AUTHENTICATION_FAILED', `Kafka does not accept this login mechanism: set KAFKA_SASL_MECHANISM to what the cluster enables (scram-sha-512 on the secure local stack). (${text})`, { cause: error });
  }
  for (const [type, what] of Object.entries(denied)) {
    if (types.has(type) || text.includes(type)) {
      return new MabeamError('KAFKA_NOT_AUTHORIZED', `Kafka denied ${who} ${what} (${type}): no ACL allows it.${check} (${text})`, { cause: error });
    }
  }
  if (/not authorized to access (topics|group)/i.test(text)) {
    return new MabeamError('KAFKA_NOT_AUTHORIZED', `Kafka denied ${who}: ${text}.${check}`, { cause: error });
  }
  if (login.user && (names.has('KafkaJSGroupCoordinatorNotFound') || /group coordinator (was )?not (be )?found/i.test(text))) {
    return new MabeamError(
      'KAFKA_NOT_AUTHORIZED',
      `Kafka found no coordinator for a consumer group of ${who}: on a cluster with ACLs this is how a denied group shows (kafkajs reports the refusal as "group coordinator not found"). Check that the role of ${who} may use the group.${check}`,
      { cause: error },
    );
  }
  if (!login.user && names.has('KafkaJSConnectionClosedError') && /closed/i.test(text)) {
    return new MabeamError('KAFKA_AUTHENTICATION_FAILED', `Kafka closed the connection before answering: the cluster may require a login. Set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE). (${describeError(error)})`, { cause: error });
  }
  return undefined;
}
