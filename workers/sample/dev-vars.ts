/**
 * Turns the JSON `npm run cluster` prints into a `.dev.vars` for `wrangler dev`: the members
 * (with made-up locations, so proximity can be tried) in REDIS_MEMBERS, and each member's
 * token and availability password in its own variable, the way they would be secrets in a
 * deployment. Node only; not part of the worker.
 *
 *   npm run cluster > .tmp/cluster.json &
 *   npx tsx workers/sample/dev-vars.ts < .tmp/cluster.json > .dev.vars
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { envSuffix } from '../../src/workers/env.js';

interface ClusterMember {
  name: string;
  url: string;
  token: string;
  weight: number;
  availability?: { url: string; bdbUid: number; username: string; password: string };
}

/** Pretend regions for the local members, for trying `REDIS_PROXIMITY=true`. */
export const SAMPLE_LOCATIONS: Record<string, { lat: number; lon: number; colos: string[] }> = {
  a: { lat: 50.11, lon: 8.68, colos: ['FRA', 'AMS', 'CDG'] },
  b: { lat: 38.95, lon: -77.45, colos: ['IAD', 'EWR', 'ATL'] },
  c: { lat: 1.35, lon: 103.99, colos: ['SIN', 'HKG', 'NRT'] },
};

/** The variables a worker needs for these members (REDIS_MEMBERS plus one secret each). */
export function devVars(
  members: ClusterMember[],
  options: { availability?: boolean } = {},
): Record<string, string> {
  const withAvailability = options.availability !== false;
  const vars: Record<string, string> = {};
  const publicMembers = members.map((m) => {
    const entry: Record<string, unknown> = { name: m.name, url: m.url, weight: m.weight };
    const location = SAMPLE_LOCATIONS[m.name];
    if (location) entry.location = location;
    if (withAvailability && m.availability) {
      const { password, ...rest } = m.availability;
      entry.availability = rest;
      vars[`REDIS_AVAILABILITY_PASSWORD_${envSuffix(m.name)}`] = password;
    }
    vars[`REDIS_TOKEN_${envSuffix(m.name)}`] = m.token;
    return entry;
  });
  return { REDIS_MEMBERS: JSON.stringify(publicMembers), ...vars };
}

/** dotenv syntax: single quotes keep JSON's double quotes as they are. */
export function toDotenv(vars: Record<string, string>): string {
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}='${v}'`)
    .join('\n')}\n`;
}

function main(): void {
  const input = readFileSync(0, 'utf8');
  let parsed: { members?: ClusterMember[] };
  try {
    parsed = JSON.parse(input);
  } catch {
    process.stderr.write('dev-vars: stdin is not the JSON `npm run cluster` prints\n');
    process.exit(2);
  }
  if (!Array.isArray(parsed.members) || parsed.members.length === 0) {
    process.stderr.write('dev-vars: no "members" array in the input\n');
    process.exit(2);
  }
  const vars = devVars(parsed.members, {
    availability: !process.argv.includes('--no-availability'),
  });
  // Short timings so failover and failback can be watched by hand.
  vars.REDIS_GRACE_PERIOD_MS = '5000';
  vars.REDIS_HEALTH_INTERVAL_MS = '1000';
  process.stdout.write(toDotenv(vars));
}

// Run as a script, not when a test imports `devVars`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
