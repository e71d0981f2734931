/**
 * `npm run cluster`: a local Active-Active cluster for trying the client by hand (a worker in
 * `wrangler dev`, curl, the sample app). Prints the member config as JSON on stdout, logs on
 * stderr, and runs until Ctrl+C / SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startLocalCluster } from '../src/testing/index.js';

const USAGE = `Usage: npm run cluster -- [--members N] [--quiet]

Starts N redis-servers, each behind an Upstash-REST gateway that also emulates the Redis
Software availability API and serves fault injection (/admin/...). Prints the members as JSON
on stdout, ready to paste into a worker's config; runs until Ctrl+C or SIGTERM, then removes
everything it started.

Options:
  -n, --members N   number of members, named a, b, c, ... (default 3; weights N..1)
  -q, --quiet       do not copy the gateways' log lines to stderr
  -h, --help        show this help
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values: { members?: string; quiet?: boolean; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      members: { type: 'string', short: 'n', default: '3' },
      quiet: { type: 'boolean', short: 'q', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const count = Number(values.members);
if (!Number.isInteger(count) || count < 1) fail(`--members must be a whole number >= 1`);

const cluster = await startLocalCluster({
  members: count,
  gateway: values.quiet
    ? {}
    : { log: (line, member) => process.stderr.write(`[${member}] ${line}\n`) },
});

const config = {
  // Spelled out so the output stays exactly the client's member shape.
  members: cluster.members.map(({ name, url, token, weight, availability }) => ({
    name,
    url,
    token,
    weight,
    availability,
  })),
  adminToken: cluster.adminToken,
};
process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);

const first = cluster.members[0]!;
process.stderr.write(
  [
    `${count} member(s) up. Try:`,
    `  curl -s -H 'Authorization: Bearer ${first.token}' -d '["PING"]' ${first.url}`,
    `  curl -s -H 'Authorization: Bearer ${cluster.adminToken}' -d '{"status":503,"errorCode":"no_quorum"}' ${first.availability.url}/admin/availability`,
    'Ctrl+C stops the cluster.',
    '',
  ].join('\n'),
);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    // Second signal: the user is impatient. The exit hook still kills every redis-server.
    process.exit(1);
  }
  stopping = true;
  process.stderr.write(`${signal}: stopping the cluster...\n`);
  await cluster.stop();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
