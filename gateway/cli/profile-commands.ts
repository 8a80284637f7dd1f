/**
 * Commands about the CLI's own setup: `whoami` (who the gateway takes the caller for) and named profiles of remote
 * endpoints (`profile set|list|remove`), kept in ~/.config/anvil/config.json.
 */
import type { Command, CommandRun } from './command.ts';
import { formatScope, keyValues, say, table, UsageError } from './format.ts';
import { profilesPath, readProfiles, validProfile, writeProfiles } from './profiles.ts';

const str = (run: CommandRun, name: string) => run.values[name] as string | undefined;

/** whoami and the profile commands, in the order help lists them. */
export const PROFILE_COMMANDS: Command[] = [
  {
    name: 'whoami', args: [], options: { json: { type: 'boolean' } },
    summary: 'show the tenant, access key, subject and grants the gateway (or the local store) takes you for',
    examples: ['whoami --profile prod', 'whoami --data-dir /var/lib/anvil'],
    async run(run) {
      const me = await run.api.call('GET', '/whoami');
      if (run.values.json) return run.out(JSON.stringify(me, null, 2) + '\n');
      run.out(keyValues({ ...me, root: me.root ? 'yes' : 'no', scopes: me.scopes.map(formatScope).join(' ') }));
    },
  },
  {
    name: 'profile set', args: ['NAME'], options: { default: { type: 'boolean' } },
    summary: 'save a remote endpoint and its credential as a named profile (from --endpoint, --access-key-id, --secret-key, --region)',
    examples: [
      'profile set prod --endpoint https://s3.example.com --access-key-id AKIA… --secret-key … --default',
      'tenant list --profile prod',
    ],
    async run(run) {
      const name = run.args[0]!;
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new UsageError('a profile name is 1 to 64 letters, digits, ".", "_" or "-"');
      const profile = validProfile({
        endpoint: str(run, 'endpoint'),
        accessKeyId: str(run, 'access-key-id'),
        secretAccessKey: str(run, 'secret-key'),
        ...(str(run, 'region') ? { region: str(run, 'region') } : {}),
      });
      const file = readProfiles(run.env);
      file.profiles[name] = profile;
      if (run.values.default === true) file.defaultProfile = name;
      const path = writeProfiles(run.env, file);
      run.out(say`Profile ${name} saved in ${path}${file.defaultProfile === name ? ' (the default)' : ''}.\n`);
    },
  },
  {
    name: 'profile list', args: [], options: { json: { type: 'boolean' } }, summary: 'list the saved profiles (never their secrets)',
    async run(run) {
      const file = readProfiles(run.env);
      const rows = Object.entries(file.profiles).map(([name, p]) => ({ name, endpoint: p.endpoint, accessKeyId: p.accessKeyId, region: p.region ?? 'us-east-1', default: file.defaultProfile === name }));
      if (run.values.json) return run.out(JSON.stringify(rows, null, 2) + '\n');
      if (rows.length === 0) return run.out(say`No profiles in ${profilesPath(run.env)}.\n`);
      run.out(table(['NAME', 'ENDPOINT', 'ACCESS KEY', 'REGION', 'DEFAULT'], rows.map((r) => [r.name, r.endpoint, r.accessKeyId, r.region, r.default ? '*' : ''])));
    },
  },
  {
    name: 'profile remove', args: ['NAME'], options: {}, summary: 'delete a saved profile',
    async run(run) {
      const file = readProfiles(run.env);
      const name = run.args[0]!;
      if (!file.profiles[name]) throw new UsageError(`no profile "${name}" in ${profilesPath(run.env)}`);
      delete file.profiles[name];
      if (file.defaultProfile === name) delete file.defaultProfile;
      writeProfiles(run.env, file);
      run.out(say`Profile ${name} removed.\n`);
    },
  },
];
