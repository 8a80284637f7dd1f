/**
 * `anvil`: the operator's CLI. Local mode opens the data directory's policy store directly (acting as `operator`);
 * remote mode signs requests to a gateway's admin API, so the gateway decides what the caller may do.
 * Exit codes: 0 done, 1 refused or failed, 2 usage.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config.ts';
import { COMMANDS, type Command } from './commands.ts';
import { UsageError } from './format.ts';
import { AdminRequestError, localTransport, remoteTransport, type AdminTransport } from './transport.ts';

const GLOBAL_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  endpoint: { type: 'string' },
  'data-dir': { type: 'string' },
  'access-key-id': { type: 'string' },
  'secret-key': { type: 'string' },
  region: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

/** The help text, also the README's reference. */
export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => [c.name, ...c.args].join(' ').length));
  const lines = COMMANDS.map((c) => `  ${[c.name, ...c.args].join(' ').padEnd(width)}  ${c.summary}`);
  return `Usage: anvil [global options] <command> [options]

Commands:
${lines.join('\n')}

List and show commands take --json.

Global options:
  --data-dir DIR       local mode: open the policy store in DIR (or ANVIL_DATA_DIR; default ./data) as operator
  --endpoint URL       remote mode: call the admin API of the gateway at URL (or ANVIL_ENDPOINT)
  --access-key-id ID   remote mode credential (or AWS_ACCESS_KEY_ID); --access-key is the log filter
  --secret-key SECRET  remote mode secret (or AWS_SECRET_ACCESS_KEY)
  --region REGION      region to sign for (or ANVIL_REGION, AWS_REGION; default us-east-1)
  -h, --help           this help

Local mode is used when --data-dir or ANVIL_DATA_DIR is given, or no endpoint is; it honours ANVIL_MASTER_KEY.
Exit codes: 0 done, 1 refused or failed, 2 usage error.
`;
}

/** Finds the command a word list names (one or two words). */
function findCommand(words: string[]): Command | undefined {
  return COMMANDS.find((c) => c.name === words.slice(0, 2).join(' ')) ?? COMMANDS.find((c) => c.name === words[0]);
}

function openTransport(values: Record<string, unknown>, env: NodeJS.ProcessEnv, command: Command): AdminTransport {
  const flagEndpoint = values.endpoint as string | undefined;
  const flagDataDir = values['data-dir'] as string | undefined;
  if (flagEndpoint && flagDataDir) throw new UsageError('give --endpoint or --data-dir, not both');
  const endpoint = flagEndpoint ?? (flagDataDir || env.ANVIL_DATA_DIR ? undefined : env.ANVIL_ENDPOINT || undefined);
  if (endpoint === undefined) {
    const config = loadConfig(flagDataDir ? { ...env, ANVIL_DATA_DIR: flagDataDir } : env);
    return localTransport({ dataDir: config.dataDir, masterKey: config.masterKey, create: command.name === 'bootstrap' });
  }
  const accessKeyId = (values['access-key-id'] as string | undefined) ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = (values['secret-key'] as string | undefined) ?? env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new UsageError('remote mode needs --access-key-id and --secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)');
  }
  try {
    new URL(endpoint);
  } catch {
    throw new UsageError(`--endpoint "${endpoint}" is not a URL`);
  }
  const region = (values.region as string | undefined) ?? (env.ANVIL_REGION || env.AWS_REGION || 'us-east-1');
  return remoteTransport({ endpoint, credentials: { accessKeyId, secretAccessKey }, region });
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[], io: { out: (s: string) => void; err: (s: string) => void; env: NodeJS.ProcessEnv }): Promise<number> {
  let api: AdminTransport | undefined;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  try {
    // First pass, lenient, only to find the command words past option values.
    const everyOption = Object.assign({}, GLOBAL_OPTIONS, ...COMMANDS.map((c) => c.options));
    const loose = parseArgs({ args: argv, options: everyOption, allowPositionals: true, strict: false });
    const command = findCommand(loose.positionals);
    if (!command) {
      if (loose.values.help || loose.positionals[0] === 'help') {
        io.out(helpText());
        return 0;
      }
      throw new UsageError(loose.positionals.length === 0 ? 'no command given' : `unknown command "${loose.positionals.slice(0, 2).join(' ')}"`);
    }
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (parsed.values.help) {
      io.out(`Usage: anvil ${[command.name, ...command.args].join(' ')}: ${command.summary}\n`);
      return 0;
    }
    const args = parsed.positionals.slice(command.name.split(' ').length);
    if (args.length !== command.args.length) {
      throw new UsageError(`${command.name} takes ${command.args.length === 0 ? 'no arguments' : command.args.join(' ')}`);
    }
    // Opened on first use, so argument mistakes a command finds are usage errors even without a store.
    let opened: AdminTransport | undefined;
    const open = () => (opened ??= api = openTransport(parsed.values, io.env, command));
    const lazy: AdminTransport = {
      call: (...a) => open().call(...a),
      follow: (...a) => open().follow(...a),
      events: (...a) => open().events(...a),
      close: () => opened?.close(),
    };
    await command.run({ api: lazy, args, values: parsed.values, out: io.out, signal: stop.signal });
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`anvil: ${err.message}\n\n${helpText()}`);
      return 2;
    }
    if (err instanceof AdminRequestError) {
      io.err(`anvil: ${err.message} (${err.code})\n`);
      return 1;
    }
    io.err(`anvil: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    api?.close();
  }
}

process.exitCode = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
});
