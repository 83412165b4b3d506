/**
 * Agents' Ed25519 key pairs, kept outside the repository: in
 * `$MABEAM_KEYS_DIR`, else `~/.config/mabeam/keys`. Per agent:
 *
 * - `<agentId>.key` — the private key, PEM (PKCS #8), mode 0600;
 * - `<agentId>.json` — `{ agentId, keyId, publicKey, createdAt, notAfter }`
 *   (notAfter an ISO time or null: the key is not to be used after it);
 * - `<agentId>.previous.key` / `.previous.json` — the key it replaced, kept
 *   by a rotation so that it can vouch for the new one (see directory.ts).
 *
 * The directory is made with mode 0700. A key is created on an agent's
 * first run. Only Node's crypto is used.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MabeamError } from '../errors.ts';

/** An agent's key pair as a host uses it. */
export interface AgentKey {
  agentId: string;
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The raw 32-byte public key, base64 (what AgentRecord.publicKey holds). */
  publicKeyBase64: string;
  /** Epoch ms after which the key is not to be used; null for no end. */
  notAfter: number | null;
}

interface KeyInfo {
  agentId: string;
  keyId: string;
  publicKey: string;
  createdAt: string;
  notAfter: string | null;
}

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32 bytes follow it. */
const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

const safeId = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Where keys are kept: `$MABEAM_KEYS_DIR`, else `~/.config/mabeam/keys`. */
export function keysDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['MABEAM_KEYS_DIR'] || join(homedir(), '.config', 'mabeam', 'keys');
}

/** The key id: base64url of the first 12 bytes of SHA-256 of the raw public key (16 characters). */
export function keyIdOf(rawPublicKey: Buffer): string {
  return createHash('sha256').update(rawPublicKey).digest().subarray(0, 12).toString('base64url');
}

/** The raw 32 bytes of an Ed25519 public key. */
export function rawPublicKey(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' }).subarray(spkiPrefix.length);
}

/** A public key from its raw 32 bytes in base64 (AgentRecord.publicKey); undefined if it is not one. */
export function publicKeyFromBase64(text: string): KeyObject | undefined {
  const raw = Buffer.from(text, 'base64');
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([spkiPrefix, raw]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

// An expired key cannot vouch for its successor: deciders that pinned it take a new key once the agent is removed from the registry.
const newKeyHint = (agentId: string) =>
  `make a new one with \`mabeam agents key ${agentId} --new\`, then \`mabeam agents forget ${agentId}\` so that deciders that pinned the expired key take the new one (rotate before a key expires to keep the pin)`;

function paths(dir: string, agentId: string, which: 'current' | 'previous') {
  const base = which === 'current' ? agentId : `${agentId}.previous`;
  return { key: join(dir, `${base}.key`), info: join(dir, `${base}.json`) };
}

function checkId(agentId: string): void {
  if (!safeId.test(agentId)) throw new MabeamError('INVALID_AGENT', `"${agentId}" is not an agent id a key file can be named after.`);
}

function parseNotAfter(notAfter: string | null | undefined, where: string): number | null {
  if (notAfter === null || notAfter === undefined) return null;
  const at = Date.parse(notAfter);
  if (!Number.isFinite(at)) throw new MabeamError('KEY_INVALID', `${where}: notAfter "${notAfter}" is not an ISO time.`);
  return at;
}

/** Reads one key (current or previous) of an agent; undefined when there is none. */
export function readKey(agentId: string, options: { dir?: string; which?: 'current' | 'previous' } = {}): AgentKey | undefined {
  checkId(agentId);
  const dir = options.dir ?? keysDir();
  const p = paths(dir, agentId, options.which ?? 'current');
  if (!existsSync(p.key)) return undefined;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(p.key));
  } catch (error) {
    throw new MabeamError('KEY_INVALID', `${p.key} does not hold a private key: ${(error as Error).message}`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new MabeamError('KEY_INVALID', `${p.key} holds a ${privateKey.asymmetricKeyType} key, not an Ed25519 one.`);
  const publicKey = createPublicKey(privateKey);
  const raw = rawPublicKey(publicKey);
  let info: Partial<KeyInfo> = {};
  if (existsSync(p.info)) {
    try {
      info = JSON.parse(readFileSync(p.info, 'utf8')) as Partial<KeyInfo>;
    } catch (error) {
      throw new MabeamError('KEY_INVALID', `${p.info} is not JSON: ${(error as Error).message}`, { cause: error });
    }
  }
  return { agentId, keyId: keyIdOf(raw), privateKey, publicKey, publicKeyBase64: raw.toString('base64'), notAfter: parseNotAfter(info.notAfter, p.info) };
}

/**
 * Writes a new key pair for the agent. With `rotate`, an existing key
 * becomes the previous one (replacing an older previous key); without it,
 * an existing key is an error. The files appear whole or not at all: each
 * is written to a temporary name and then linked into place, which fails
 * if another process made the key meanwhile.
 */
export function createKey(agentId: string, options: { dir?: string; notAfter?: string | null; rotate?: boolean; now?: number } = {}): AgentKey {
  checkId(agentId);
  const dir = options.dir ?? keysDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const current = paths(dir, agentId, 'current');
  if (existsSync(current.key)) {
    if (!options.rotate) throw new MabeamError('KEY_INVALID', `Agent ${agentId} already has a key (${current.key}).`);
    const previous = paths(dir, agentId, 'previous');
    rmSync(previous.info, { force: true });
    renameSync(current.key, previous.key);
    if (existsSync(current.info)) renameSync(current.info, previous.info);
  }
  const notAfter = parseNotAfter(options.notAfter, 'the new key');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  const info: KeyInfo = {
    agentId, keyId: keyIdOf(raw), publicKey: raw.toString('base64'),
    createdAt: new Date(options.now ?? Date.now()).toISOString(), notAfter: notAfter === null ? null : new Date(notAfter).toISOString(),
  };
  const tmp = join(dir, `.${agentId}.${process.pid}.${Date.now()}`);
  // The info file first: a reader that finds the key finds its notAfter too.
  writeFileSync(`${tmp}.json`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  writeFileSync(`${tmp}.key`, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  try {
    renameSync(`${tmp}.json`, current.info);
    linkSync(`${tmp}.key`, current.key);
  } finally {
    rmSync(`${tmp}.key`, { force: true });
    rmSync(`${tmp}.json`, { force: true });
  }
  return { agentId, keyId: info.keyId, privateKey, publicKey, publicKeyBase64: info.publicKey, notAfter };
}

/**
 * The key an agent signs with: read, or created on its first run. An
 * expired key is refused (KEY_EXPIRED), saying how to make a new one.
 */
export function agentKey(agentId: string, options: { dir?: string; now?: number } = {}): AgentKey {
  let key = readKey(agentId, options);
  if (!key) {
    try {
      key = createKey(agentId, options);
    } catch (error) {
      // Another process (a replica of the agent starting at the same moment) made it first.
      key = readKey(agentId, options);
      if (!key) throw error;
    }
  }
  const now = options.now ?? Date.now();
  if (key.notAfter !== null && key.notAfter < now) {
    throw new MabeamError('KEY_EXPIRED', `The key ${key.keyId} of agent ${agentId} expired at ${new Date(key.notAfter).toISOString()} (${join(options.dir ?? keysDir(), `${agentId}.key`)}); ${newKeyHint(agentId)}.`, {
      details: { agentId, keyId: key.keyId, notAfter: key.notAfter },
    });
  }
  return key;
}

/** The previous key of an agent (kept by a rotation), if it has one that has not expired. */
export function previousKey(agentId: string, options: { dir?: string; now?: number } = {}): AgentKey | undefined {
  const key = readKey(agentId, { ...options, which: 'previous' });
  if (!key) return undefined;
  return key.notAfter !== null && key.notAfter < (options.now ?? Date.now()) ? undefined : key;
}
