import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { endpointsFromEnvironment, environmentFor } from '../../src/stack/endpoints.ts';
import { registryHeaders } from '../../src/schemas/registry.ts';

const addresses = { KAFKA_BROKERS: 'a:1, b:2', SCHEMA_REGISTRY_URL: 'http://r:8080/apis/ccompat/v7/', REDIS_URL: 'redis://127.0.0.1:6390' };

describe('logins from the environment', () => {
  it('names no login when none is set: an open cluster', () => {
    expect(endpointsFromEnvironment(addresses)).toEqual({ kafkaBrokers: ['a:1', 'b:2'], schemaRegistryUrl: 'http://r:8080/apis/ccompat/v7', redisUrl: 'redis://127.0.0.1:6390' });
  });

  it('reads passwords from files, so they stay off command lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mabeam-cred-'));
    writeFileSync(join(dir, 'kafka'), 's3cret\n');
    writeFileSync(join(dir, 'registry'), 'r-pw');
    writeFileSync(join(dir, 'redis'), 'p@ss/word\n');
    const endpoints = endpointsFromEnvironment({
      ...addresses,
      KAFKA_SASL_USERNAME: 'agent-a',
      KAFKA_SASL_PASSWORD_FILE: join(dir, 'kafka'),
      SCHEMA_REGISTRY_USERNAME: 'reader',
      SCHEMA_REGISTRY_PASSWORD_FILE: join(dir, 'registry'),
      REDIS_PASSWORD_FILE: join(dir, 'redis'),
    });
    expect(endpoints?.kafkaSasl).toEqual({ mechanism: 'scram-sha-512', username: 'agent-a', password: 's3cret' });
    expect(endpoints?.registryAuth).toEqual({ username: 'reader', password: 'r-pw' });
    expect(new URL(endpoints!.redisUrl).password).toBe(encodeURIComponent('p@ss/word'));
    expect(decodeURIComponent(new URL(endpoints!.redisUrl).password)).toBe('p@ss/word');
    // A child given environmentFor reaches the same services with the same logins.
    expect(endpointsFromEnvironment(environmentFor(endpoints!))).toEqual(endpoints);
    expect(registryHeaders({ url: 'x', auth: { username: 'reader', password: 'r-pw' } })).toEqual({ authorization: `Basic ${Buffer.from('reader:r-pw').toString('base64')}` });
  });

  it('refuses a user without a password, an unreadable password file and an unknown mechanism, saying which', () => {
    expect(() => endpointsFromEnvironment({ ...addresses, KAFKA_SASL_USERNAME: 'a' })).toThrow(/KAFKA_SASL_PASSWORD/);
    expect(() => endpointsFromEnvironment({ ...addresses, KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD_FILE: '/nonexistent/pw' })).toThrow(/\/nonexistent\/pw/);
    expect(() => endpointsFromEnvironment({ ...addresses, KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD: 'p', KAFKA_SASL_MECHANISM: 'gssapi' })).toThrow(/scram-sha-512/);
    expect(() => endpointsFromEnvironment({ ...addresses, SCHEMA_REGISTRY_USERNAME: 'r' })).toThrow(/SCHEMA_REGISTRY_PASSWORD/);
  });
});
