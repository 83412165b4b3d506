// Runs in every test worker: kafkajs's negative-timeout warnings are noise there as in the CLI.
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';

silenceKafkajsTimerWarnings();
