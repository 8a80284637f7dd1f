/**
 * What a CLI command is: its words, arguments, options (node:util parseArgs syntax, turned into commander options by
 * main.ts), help text and the function that turns them into admin API calls. Command files export lists of these.
 */
import type { ParseArgsConfig } from 'node:util';
import type { AdminTransport } from './transport.ts';

/** A command's options, in node:util parseArgs syntax. */
export type Options = NonNullable<ParseArgsConfig['options']>;

/** What a command runs with. */
export interface CommandRun {
  api: AdminTransport;
  args: string[];
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  out: (text: string) => void;
  /** Aborts a --follow. */
  signal: AbortSignal;
  /** The environment the CLI runs in (profiles, defaults). */
  env: NodeJS.ProcessEnv;
}

/** One command. */
export interface Command {
  /** One or two words, e.g. `credential create`. */
  name: string;
  /** Positional arguments in upper case, e.g. `ID`; an optional one in brackets, e.g. `[ID]`. */
  args: string[];
  options: Options;
  summary: string;
  /** Example invocations shown by `anvil <command> --help`, without the leading `anvil`. */
  examples?: string[];
  /** Resolves with nothing (exit 0), or the exit code the command chose (`audit check --fail-on`). */
  run(run: CommandRun): Promise<void | number>;
}
