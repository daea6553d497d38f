// The fraud ip blocklist file (--fraud-ip-blocklist), read once at startup into the set
// FraudSignalTracker (fraud_signals.ts) declines outright.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/** The fraud ip blocklist file: one address per line; blank lines and # comments ignored. */
export function load_ip_blocklist(file: string | undefined): Set<string> {
  if (file === undefined) return new Set();
  const lines = readFileSync(file, 'utf8').split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
  for (const line of lines) {
    if (isIP(line) === 0) throw new Error(`--fraud-ip-blocklist: ${line} is not an ip address`);
  }
  return new Set(lines);
}
