/**
 * Checks `when` conditions before they reach CASL. CASL (via @ucast/mongo2js) treats an unknown
 * operator such as `$lessThan` as equality with an object, which silently never matches; a typo
 * in a forbid would then quietly stop forbidding. So operators are checked here, by name.
 */
export const CONDITION_OPERATORS = [
  '$eq', '$ne', '$lt', '$lte', '$gt', '$gte', '$in', '$nin', '$all', '$size', '$regex', '$options', '$elemMatch', '$exists',
] as const;

const OPERATORS: ReadonlySet<string> = new Set(CONDITION_OPERATORS);

export interface ConditionProblem {
  path: (string | number)[];
  message: string;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function checkOperator(op: string, value: unknown, siblings: Record<string, unknown>, path: (string | number)[], out: ConditionProblem[]) {
  const fail = (message: string) => out.push({ path: [...path, op], message });
  switch (op) {
    case '$eq':
    case '$ne':
      if (!isScalar(value) && !Array.isArray(value)) fail(`${op} takes a string, number, boolean or null`);
      break;
    case '$lt':
    case '$lte':
    case '$gt':
    case '$gte':
      if (typeof value !== 'number' && typeof value !== 'string') fail(`${op} takes a number or a string`);
      break;
    case '$in':
    case '$nin':
    case '$all':
      if (!Array.isArray(value)) fail(`${op} takes a list, e.g. ${op}: [acme, globex]`);
      break;
    case '$size':
      if (!Number.isInteger(value) || (value as number) < 0) fail('$size takes a non-negative integer');
      break;
    case '$exists':
      if (typeof value !== 'boolean') fail('$exists takes true or false');
      break;
    case '$regex':
      if (typeof value !== 'string') fail('$regex takes a string');
      else
        try {
          new RegExp(value, typeof siblings.$options === 'string' ? siblings.$options : undefined);
        } catch (e) {
          fail(`$regex is not a valid regular expression: ${(e as Error).message}`);
        }
      break;
    case '$options':
      if (typeof value !== 'string' || !/^[imsu]*$/.test(value)) fail('$options takes regular-expression flags from i, m, s, u');
      else if (!('$regex' in siblings)) fail('$options only applies together with $regex');
      break;
    case '$elemMatch':
      if (!isPlainObject(value)) fail('$elemMatch takes conditions on the list items');
      else if (Object.keys(value).some((k) => k.startsWith('$'))) checkOperators(value, [...path, op], out);
      else checkConditionObject(value, [...path, op], out);
      break;
  }
}

function checkOperators(ops: Record<string, unknown>, path: (string | number)[], out: ConditionProblem[]) {
  for (const [op, value] of Object.entries(ops)) {
    if (!op.startsWith('$')) {
      out.push({ path: [...path, op], message: `"${op}" mixed with operators; put each attribute at the top of when` });
    } else if (!OPERATORS.has(op)) {
      out.push({ path: [...path, op], message: `unknown operator "${op}" (supported: ${CONDITION_OPERATORS.join(', ')})` });
    } else {
      checkOperator(op, value, ops, path, out);
    }
  }
}

function checkConditionObject(when: Record<string, unknown>, path: (string | number)[], out: ConditionProblem[]) {
  for (const [field, value] of Object.entries(when)) {
    const at = [...path, field];
    if (field.startsWith('$')) {
      out.push({ path: at, message: `"${field}" cannot be used at the top of when; conditions are attribute: value or attribute: { operator: value }` });
    } else if (isPlainObject(value)) {
      const keys = Object.keys(value);
      if (keys.length === 0) out.push({ path: at, message: `empty conditions for "${field}"` });
      else if (keys.every((k) => !k.startsWith('$')))
        out.push({ path: at, message: `"${field}" compares against an object; use a dotted attribute name such as "${field}.${keys[0]}" or $elemMatch` });
      else checkOperators(value, at, out);
    } else if (!isScalar(value) && !Array.isArray(value)) {
      out.push({ path: at, message: `"${field}" must be a value or { operator: value }` });
    }
  }
}

/** Every problem in a `when` block, with paths relative to it. */
export function conditionProblems(when: Record<string, unknown>): ConditionProblem[] {
  const out: ConditionProblem[] = [];
  checkConditionObject(when, [], out);
  return out;
}
