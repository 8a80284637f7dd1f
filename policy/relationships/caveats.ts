/**
 * Caveats: CEL conditions on tuples, compiled and evaluated with @bufbuild/cel. A caveat is identified by its name and
 * the hash of its canonical text, `caveat name(p type, …) { <CEL as unparse(parse(body)) prints it> }`: sha256 hex,
 * first 16 characters. Whitespace and comment edits keep the hash; any change of meaning moves it, and tuples written
 * against the old hash then fail closed ("invalid caveat hash").
 *
 * Parameter types and their context JSON mapping are SpiceDB's (caveat-types.ts), `ipaddress` with `in_cidr` included.
 * The package's type checker does not handle calls yet, so "compile with declared parameter types" is done as: every
 * identifier must be a declared parameter (or a comprehension variable), and the plan is probe-run with sample values
 * of the declared types, where "no matching overload" means a type error and a non-bool result is refused.
 */

import { createHash } from 'node:crypto';
import { isCelError, parse, plan, unparse, celEnv, type CelInput } from '@bufbuild/cel';
import { CAVEAT_REGISTRY, IN_CIDR, sample, toCel, validType } from './caveat-types.ts';
import type { CaveatAst } from './schema-parser.ts';

/** Request context parameter names the gateway supplies at check time; tuples may not pin them. */
export const REQUEST_CONTEXT_PARAMS = ['now', 'client_ip'] as const;

/** The outcome of one caveat evaluation. */
export type CaveatOutcome =
  | { result: 'allowed' | 'denied'; reason?: string }
  | { result: 'conditional'; missing: string[] };

/** A compiled caveat. */
export interface CompiledCaveat {
  name: string;
  params: Array<{ name: string; type: string }>;
  canonical: string;
  hash: string;
  /** Evaluates with the merged context (raw JSON-ish values; Date for timestamps is fine). */
  evaluate(context: Record<string, unknown>): CaveatOutcome;
  /** Converts one context value to the parameter's type, or throws a message naming the parameter. */
  convert(param: string, value: unknown): CelInput;
}

const ENV = celEnv({ registry: CAVEAT_REGISTRY, funcs: [IN_CIDR] });
const TYPE_IDENTS = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'list', 'map', 'null_type', 'type']);

/** The hash tuples carry for a caveat: first 16 hex characters of sha256 over its canonical text. */
export function caveatHash(canonical: string): string {
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Compiles a parsed caveat; returns the errors (empty when it compiled) and the caveat. */
export function compileCaveat(ast: CaveatAst): { errors: string[]; caveat?: CompiledCaveat } {
  const where = `line ${ast.line}: caveat ${ast.name}`;
  const errors: string[] = [];
  for (const p of ast.params) if (!validType(p.type)) errors.push(`${where}: parameter ${p.name} has unknown type ${p.type}`);
  if (errors.length > 0) return { errors };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(ast.expression);
  } catch (error) {
    // The CEL parser recurses per nesting level: an expression nested thousands deep overflows its stack.
    if (error instanceof RangeError) return { errors: [`${where}: expression nests deeper than ${MAX_CAVEAT_DEPTH} levels`] };
    return { errors: [`${where}: CEL syntax error: ${(error as Error).message}`] };
  }
  // What follows (the identifier walk, planning, evaluation, unparse) recurses per level of the tree too.
  if (exprDepth(parsed.expr) > MAX_CAVEAT_DEPTH) return { errors: [`${where}: expression nests deeper than ${MAX_CAVEAT_DEPTH} levels`] };
  const declared = new Set(ast.params.map((p) => p.name));
  for (const name of identifiers(parsed.expr, new Set())) {
    if (!declared.has(name) && !TYPE_IDENTS.has(name)) errors.push(`${where}: unknown identifier "${name}" (not a declared parameter)`);
  }
  if (errors.length > 0) return { errors };
  const run = plan(ENV, parsed);
  const types = new Map(ast.params.map((p) => [p.name, p.type]));
  const probeOverloads = ![...types.values()].some((t) => t.includes('any'));
  for (const variant of [0, 1]) {
    const bindings = Object.fromEntries(ast.params.map((p) => [p.name, sample(p.type, variant)]));
    const value = run(bindings);
    if (isCelError(value)) {
      if (probeOverloads && /overload/i.test(value.message)) errors.push(`${where}: type error: ${value.message}`);
    } else if (typeof value !== 'boolean') errors.push(`${where}: expression must be bool`);
  }
  if (errors.length > 0) return { errors: [...new Set(errors)] };
  const canonical = `caveat ${ast.name}(${ast.params.map((p) => `${p.name} ${p.type}`).join(', ')}) { ${unparse(parsed)} }`;
  const convert = (param: string, value: unknown): CelInput => toCel(types.get(param) ?? 'any', value, param);
  const caveat: CompiledCaveat = {
    name: ast.name,
    params: ast.params,
    canonical,
    hash: caveatHash(canonical),
    convert,
    evaluate(context) {
      const bindings: Record<string, CelInput> = {};
      const missing: string[] = [];
      for (const p of ast.params) {
        if (context[p.name] === undefined) missing.push(p.name);
        else {
          try {
            bindings[p.name] = convert(p.name, context[p.name]);
          } catch (error) {
            return { result: 'denied', reason: `caveat ${ast.name}: ${(error as Error).message}` };
          }
        }
      }
      const value = run(bindings);
      if (typeof value === 'boolean') return { result: value ? 'allowed' : 'denied', reason: value ? undefined : `caveat ${ast.name} is false` };
      if (missing.length > 0) return { result: 'conditional', missing };
      const message = isCelError(value) ? value.message : 'result is not bool';
      return { result: 'denied', reason: `caveat ${ast.name} failed: ${message}` };
    },
  };
  return { errors: [], caveat };
}

type Node = { exprKind?: { case?: string; value?: unknown } } | undefined;

/**
 * Deepest a caveat's expression tree may nest (member steps `x.a.a…`, calls, lists, operators, parentheses). Every
 * step after parsing walks the tree recursively; 1,000 levels were seen to compile and 3,000 to overflow the stack.
 */
export const MAX_CAVEAT_DEPTH = 500;

/** How deep the expressions of a CEL AST nest, counted without recursion (so any tree can be measured). */
function exprDepth(root: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object' || ArrayBuffer.isView(node)) continue;
    const here = 'exprKind' in node ? depth + 1 : depth;
    if (here > max) max = here;
    for (const value of Object.values(node)) if (value !== null && typeof value === 'object') stack.push([value, here]);
  }
  return max;
}

/** Free identifiers of a CEL AST; comprehension variables are bound inside their loop. */
function identifiers(node: Node, bound: Set<string>, out = new Set<string>()): Set<string> {
  const kind = node?.exprKind;
  const v = kind?.value as Record<string, unknown> | undefined;
  if (!kind || !v) return out;
  const walk = (child: unknown, scope = bound): void => void identifiers(child as Node, scope, out);
  switch (kind.case) {
    case 'identExpr':
      if (!bound.has(v.name as string)) out.add(v.name as string);
      break;
    case 'selectExpr':
      walk(v.operand);
      break;
    case 'callExpr':
      walk(v.target);
      for (const arg of v.args as unknown[]) walk(arg);
      break;
    case 'listExpr':
      for (const element of v.elements as unknown[]) walk(element);
      break;
    case 'structExpr':
      for (const entry of v.entries as Array<{ keyKind: { case?: string; value?: unknown }; value: unknown }>) {
        if (entry.keyKind.case === 'mapKey') walk(entry.keyKind.value);
        walk(entry.value);
      }
      break;
    case 'comprehensionExpr': {
      walk(v.iterRange);
      walk(v.accuInit);
      const inner = new Set([...bound, v.iterVar as string, v.iterVar2 as string, v.accuVar as string]);
      for (const part of [v.loopCondition, v.loopStep, v.result]) walk(part, inner);
      break;
    }
  }
  return out;
}
