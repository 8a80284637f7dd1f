/**
 * Shell completion for `anvil`: `eval "$(anvil completion bash)"` in ~/.bashrc, or the same with zsh (through
 * bashcompinit). Completes command words, then each command's options, from the command tables.
 */
import type { Command } from './command.ts';

/** The shells a script can be printed for. */
export const SHELLS = ['bash', 'zsh'];

const words = (list: Iterable<string>) => [...new Set(list)].join(' ');

/** The completion script for `shell`. */
export function completionScript(shell: string, commands: Command[], globals: string[]): string {
  const top = words(commands.map((c) => c.name.split(' ')[0]!).concat(['completion', 'help']));
  const groups = new Map<string, string[]>();
  for (const c of commands) {
    const [first, second] = c.name.split(' ');
    if (second) groups.set(first!, [...(groups.get(first!) ?? []), second]);
  }
  const globalFlags = globals.map((g) => `--${g}`).concat(['--help']);
  const flagsOf = (c: Command) => words(Object.keys(c.options).map((o) => `--${o}`).concat(globalFlags));
  const optcases = commands.map((c) => `      "${c.name}") COMPREPLY=($(compgen -W "${flagsOf(c)}" -- "$cur")) ;;`).join('\n');
  const groupNames = words(groups.keys());
  const bash = `# anvil completion for ${shell}; load with: eval "$(anvil completion ${shell})"
_anvil_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" i
  local -a plain=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ "\${COMP_WORDS[i]}" == -* ]] || plain+=("\${COMP_WORDS[i]}")
  done
  local cmd="\${plain[0]}"
  case " ${groupNames} " in *" $cmd "*) [[ \${#plain[@]} -ge 2 ]] && cmd="$cmd \${plain[1]}" ;; esac
  if [[ "$cur" == -* ]]; then
    case "$cmd" in
${optcases}
      *) COMPREPLY=($(compgen -W "${words(globalFlags)}" -- "$cur")) ;;
    esac
    return
  fi
  case "\${#plain[@]}:$cmd" in
    0:) COMPREPLY=($(compgen -W "${top}" -- "$cur")) ;;
${[...groups].map(([g, subs]) => `    1:${g}) COMPREPLY=($(compgen -W "${words(subs)}" -- "$cur")) ;;`).join('\n')}
    1:completion) COMPREPLY=($(compgen -W "${SHELLS.join(' ')}" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -o default -F _anvil_complete anvil
`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}
