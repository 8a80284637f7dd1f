/**
 * What a check's explanation may show a caller narrower than its tenant: only relationships on resources its
 * `check` or `tuples:read` grants reach (what its own check and GET /tuples would show it). A step of the path on any
 * other resource (another folder, a group's membership) is elided, and a reason naming such a resource gives way to
 * the bare result, so explain is no way around the reach that check, lookup and GET /tuples keep (README "check").
 */
import { relationships as rel } from '../../policy/index.ts';

/** Stands for one or more steps of a path on resources outside the caller's reach. */
export const ELIDED_STEP = '(a relationship outside your reach)';

/** `type:id` tokens as the engine formats resources in paths and reasons (formatObject). */
const OBJECT_TOKEN = /\b([a-z][a-z0-9_]*):([^\s#@,;()]+)/g;

/** The resource a path step is about: the object before its `#`, or for a reverse-index step the userset's object. */
function stepResource(step: string): rel.ObjectRef | undefined {
  const reverse = / in (\S+) \(reverse index\)$/.exec(step);
  const text = reverse ? reverse[1]! : step;
  const hash = text.indexOf('#');
  try {
    const ref = rel.parseSubject(hash < 0 ? text : text.slice(0, hash));
    return { type: ref.type, id: ref.id };
  } catch {
    return undefined;
  }
}

/**
 * A check answer cut to what `visible` lets the caller see: each step on a resource it does not reach becomes
 * ELIDED_STEP (consecutive ones once), an allowed reason is rebuilt from the cut path, and any other reason naming a
 * resource it does not reach becomes the bare result (as an unseen actor's answer reads, policy/actors.ts).
 */
export function withinReach<R extends rel.CheckResult>(result: R, visible: (ref: rel.ObjectRef) => boolean): R {
  const seen = (ref: rel.ObjectRef | undefined) => ref !== undefined && visible(ref);
  let path = result.path;
  if (path !== undefined) {
    const cut: string[] = [];
    for (const step of path) {
      const shown = seen(stepResource(step)) ? step : ELIDED_STEP;
      if (shown !== ELIDED_STEP || cut.at(-1) !== ELIDED_STEP) cut.push(shown);
    }
    path = cut;
  }
  const names = [...result.reason.matchAll(OBJECT_TOKEN)].map((m) => {
    try {
      return { type: m[1]!, id: rel.unescapeId(m[2]!) };
    } catch {
      return undefined;
    }
  });
  let reason = result.reason;
  if (!names.every(seen)) {
    reason = result.result === 'allowed' && path !== undefined ? `granted via ${path.join(' → ')}`
      : result.result === 'conditional' ? `conditional on ${(result.missing ?? []).join(', ')}`
      : result.result === 'allowed' ? 'granted' : 'not granted';
  }
  return { ...result, reason, ...(path !== undefined ? { path } : {}) };
}
