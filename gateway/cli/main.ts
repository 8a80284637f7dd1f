/**
 * `anvil`: the operator's CLI, built on commander from the command tables. Local mode opens the data directory's
 * policy store directly (acting as `operator`); remote mode signs requests to a gateway's admin API (SigV4 with
 * @smithy/signature-v4), so the gateway decides what the caller may do. Exit codes: 0 done, 1 refused or failed
 * (or, for `audit check`, a finding at or above --fail-on), 2 usage (the error and that command's usage on stderr).
 */
import { Command as Program, CommanderError, Option } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config.ts';
import { packageVersion } from '../version.ts';
import type { Command, Options } from './command.ts';
import { COMMANDS } from './commands.ts';
import { completionScript, SHELLS } from './completion.ts';
import { printable, printableLines, setColor, UsageError } from './format.ts';
import { chosenProfile } from './profiles.ts';
import { AdminRequestError, localTransport, remoteTransport, type AdminTransport } from './transport.ts';

/** What the CLI talks to: its output streams and environment (a test passes its own). */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stderr is a terminal: colour only then (and never with NO_COLOR). */
  isTTY?: boolean;
}

/** Parent commands of the two-word commands, with what they group. */
const GROUPS: Record<string, string> = {
  tenant: 'tenants (isolation boundaries; root only, except show)',
  credential: 'application credentials of a tenant',
  bucket: 'bucket owners and relationship governance',
  schema: "a tenant's relationship schema",
  tuples: 'relationship tuples',
  role: 'roles sessions assume (STS)',
  oidc: 'OpenID Connect issuers trusted for web identity',
  sts: 'session-token signing keys',
  capability: 'capabilities (bearer tokens that carry their own scope)',
  profile: 'named remote endpoints in ~/.config/anvil/config.json',
};

/** Global options, by the name command tables read them under. */
const GLOBALS: Array<[name: string, flags: string, description: string]> = [
  ['data-dir', '--data-dir <dir>', 'local mode: open the policy store in DIR (or ANVIL_DATA_DIR; default ./data) as operator'],
  ['endpoint', '--endpoint <url>', 'remote mode: call the admin API of the gateway at URL (or ANVIL_ENDPOINT)'],
  ['profile', '--profile <name>', 'remote mode: endpoint and credential of a saved profile (or ANVIL_PROFILE)'],
  ['access-key-id', '--access-key-id <id>', 'remote mode credential (or AWS_ACCESS_KEY_ID)'],
  ['secret-key', '--secret-key <secret>', 'remote mode secret (or AWS_SECRET_ACCESS_KEY)'],
  ['region', '--region <region>', 'region to sign for (or ANVIL_REGION, AWS_REGION; default us-east-1)'],
];

const MODES = `
Local mode is used when --data-dir or ANVIL_DATA_DIR is given, or no endpoint or profile is; it honours
ANVIL_MASTER_KEY, ANVIL_MASTER_KEY_FILE and ANVIL_POLICY_DATABASE (a postgres:// URL: the policy every node
shares). Remote mode signs each request; the gateway decides what the credential may do.
Exit codes: 0 done, 1 refused or failed (audit check: a finding at or above --fail-on), 2 usage error.`;

/** Help text of the options many commands share; others are explained by their command's summary. */
const OPTION_HELP: Record<string, string> = {
  json: 'print JSON instead of a table',
  tenant: 'the tenant to act in (root and the local operator name one; a tenant credential acts in its own)',
  reason: 'why, recorded in the audit trail',
  since: 'from this time: ISO 8601 or a duration back from now (1h, 30d)',
  until: 'up to this time: ISO 8601 or a duration back from now',
  limit: 'at most this many (the newest)',
  follow: 'keep printing new lines as they come (Ctrl-C stops)',
  expires: 'expiry: ISO 8601 or a duration from now (1h, 30d)',
  'access-key': 'only this access key id',
  all: 'every credential of --tenant (the emergency revocation)',
  lift: 'end the lockdown: the tenant is enabled again',
  days: 'the audit window in days (default 30): stale keys, families used, shared keys, reserved-prefix attempts',
  'key-age': 'report capability root keys older than this many days (default 90)',
  'max-addresses': 'more remote addresses than this in the window marks a shared key (default 5)',
  'max-agents': 'more user agents than this in the window marks a shared key (default 3)',
  'fail-on': 'exit 1 when a finding is at or above: low, medium, high (default), critical, or none',
  'since-last': 'list only the findings the previous recorded run did not have',
};

/** The commander option of a command-table option. */
function optionOf(name: string, spec: Options[string]): Option {
  const flags = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ' <value>' : ''}`;
  const option = new Option(flags, OPTION_HELP[name] ?? '');
  if (spec.multiple) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
  return option;
}

/** Picks local or remote mode from the flags, the environment and the profiles, and opens that transport. */
function openTransport(values: Record<string, unknown>, env: NodeJS.ProcessEnv, command: Command): AdminTransport {
  const flagEndpoint = values.endpoint as string | undefined;
  const flagDataDir = values['data-dir'] as string | undefined;
  if (flagEndpoint && flagDataDir) throw new UsageError('give --endpoint or --data-dir, not both');
  const local = flagDataDir !== undefined || (flagEndpoint === undefined && !values.profile && Boolean(env.ANVIL_DATA_DIR));
  const profile = local || flagEndpoint ? undefined : chosenProfile(env, values.profile as string | undefined);
  const endpoint = local ? undefined : (flagEndpoint ?? profile?.endpoint ?? (env.ANVIL_ENDPOINT || undefined));
  if (endpoint === undefined) {
    const config = loadConfig(flagDataDir ? { ...env, ANVIL_DATA_DIR: flagDataDir } : env);
    return localTransport({ dataDir: config.dataDir, masterKey: config.masterKey, policyDatabase: config.policyDatabase, create: command.name === 'bootstrap' });
  }
  const accessKeyId = (values['access-key-id'] as string | undefined) ?? profile?.accessKeyId ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = (values['secret-key'] as string | undefined) ?? profile?.secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new UsageError('remote mode needs --access-key-id and --secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --profile)');
  }
  try {
    new URL(endpoint);
  } catch {
    throw new UsageError(`--endpoint "${endpoint}" is not a URL`);
  }
  const region = (values.region as string | undefined) ?? profile?.region ?? (env.ANVIL_REGION || env.AWS_REGION || 'us-east-1');
  return remoteTransport({ endpoint, credentials: { accessKeyId, secretAccessKey }, region });
}

/** Builds the commander program over `commands`; `running` learns which transport a run opened (to close it). */
function buildProgram(commands: Command[], io: CliIo, color: boolean, signal: AbortSignal, opened: { api?: AdminTransport; exitCode?: number }): Program {
  const program = new Program('anvil')
    .description('Operate an Anvil gateway: tenants, credentials, buckets, relationships, sessions, capabilities, logs.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help (anvil COMMAND --help shows its options and examples)')
    .exitOverride()
    .showHelpAfterError(true)
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      outputError: (message, write) => write(`${color ? '\x1b[31manvil:\x1b[0m' : 'anvil:'} ${message.replace(/^error: /, '').trimEnd()}\n`),
      getOutHasColors: () => color,
      getErrHasColors: () => color,
    })
    .configureHelp({ styleTitle: (title) => (color ? `\x1b[1m${title}\x1b[0m` : title), sortSubcommands: false })
    .addHelpCommand('help [command]', 'show help for a command');
  const attribute = new Map<string, string>();
  for (const [name, flags, description] of GLOBALS) {
    const option = new Option(flags, description);
    attribute.set(option.attributeName(), name);
    program.addOption(option);
  }
  program.addHelpText('after', `\nAll commands:\n${commands.map((c) => `  anvil ${[c.name, ...c.args].join(' ')}`).join('\n')}\n  anvil completion bash|zsh\n${MODES}\n`);

  const groups = new Map<string, Program>();
  const parentOf = (words: string[]): Program => {
    if (words.length === 1) return program;
    // A one-word command may also group two-word ones (`anvil audit` and `anvil audit check`).
    let group = groups.get(words[0]!) ?? program.commands.find((c) => c.name() === words[0]);
    if (!group) {
      group = program.command(words[0]!).description(GROUPS[words[0]!] ?? words[0]!);
      groups.set(words[0]!, group);
    }
    return group;
  };
  for (const command of commands) {
    const words = command.name.split(' ');
    const cmd = parentOf(words).command(words.at(-1)!).description(command.summary);
    for (const arg of command.args) cmd.argument(arg.startsWith('[') ? arg : `<${arg}>`);
    for (const [name, spec] of Object.entries(command.options)) {
      const option = optionOf(name, spec);
      attribute.set(option.attributeName(), name);
      cmd.addOption(option);
    }
    if (command.examples?.length) cmd.addHelpText('after', `\nExamples:\n${command.examples.map((e) => `  anvil ${e}`).join('\n')}\n`);
    cmd.action(async (...params: unknown[]) => {
      const self = params.at(-1) as Program;
      const values = Object.fromEntries(Object.entries(self.optsWithGlobals()).map(([k, v]) => [attribute.get(k) ?? k, v]));
      // Opened on first use, so argument mistakes a command finds are usage errors even without a store.
      const open = () => (opened.api ??= openTransport(values, io.env, command));
      const api: AdminTransport = {
        get endpoint() {
          return open().endpoint;
        },
        call: (...a) => open().call(...a),
        upload: (...a) => open().upload(...a),
        follow: (...a) => open().follow(...a),
        events: (...a) => open().events(...a),
        close: () => opened.api?.close(),
      };
      try {
        const code = await command.run({ api, args: params.slice(0, command.args.length) as string[], values, out: io.out, signal, env: io.env });
        if (typeof code === 'number') opened.exitCode = code;
      } catch (error) {
        if (error instanceof UsageError) self.error(printable(error.message), { exitCode: 2, code: 'anvil.usage' });
        throw error;
      }
    });
  }
  program
    .command('completion')
    .description('print a shell completion script: eval "$(anvil completion bash)" (or zsh)')
    .argument('<shell>', `one of ${SHELLS.join(', ')}`)
    .action((shell: string, _options: unknown, self: Program) => {
      if (!SHELLS.includes(shell)) self.error(`completion supports ${SHELLS.join(' and ')}, not "${shell}"`, { exitCode: 2, code: 'anvil.usage' });
      io.out(completionScript(shell, commands, GLOBALS.map(([name]) => name)));
    });
  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const color = Boolean(io.isTTY) && !io.env.NO_COLOR;
  setColor(color);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  const opened: { api?: AdminTransport; exitCode?: number } = {};
  const red = (s: string) => (color ? `\x1b[31m${s}\x1b[0m` : s);
  try {
    await buildProgram(COMMANDS, io, color, stop.signal, opened).parseAsync(argv, { from: 'user' });
    return opened.exitCode ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end with code 0; everything commander refuses, and UsageError, is a usage error.
      if (err.exitCode === 0) return 0;
      return 2;
    }
    if (err instanceof AdminRequestError) {
      io.err(`${red('anvil:')} ${printable(err.message)}${err.code === 'ConnectionFailed' ? '' : ` (${err.code})`}\n`);
      return 1;
    }
    io.err(`${red('anvil:')} ${printableLines((err as Error).message)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    await opened.api?.close();
  }
}

// Run directly (`node --import tsx gateway/cli/main.ts …` in development and tests), it is the CLI itself;
// bin/anvil.js imports main() from the compiled build instead.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) {
  process.exitCode = await main(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    isTTY: process.stderr.isTTY,
  });
}
