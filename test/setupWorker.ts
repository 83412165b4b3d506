// Runs in every test worker: kafkajs's negative-timeout warnings are noise there as in the CLI.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';

silenceKafkajsTimerWarnings();

// Agents sign with keys made on their first run: in tests, in a folder of the run's own, not the user's ~/.config/mabeam/keys.
process.env['MABEAM_KEYS_DIR'] ??= join(tmpdir(), `mabeam-test-keys-${process.pid}`);
