import { compileInputSchema, InputSchemaSchema, toJsonSchema, type InputSchema } from './schema';
import { formatIssues } from './input';

const compile = (s: unknown) => compileInputSchema(InputSchemaSchema.parse(s));
const problems = (s: unknown) => {
  const r = InputSchemaSchema.safeParse(s);
  return r.success ? '' : formatIssues(r.error.issues);
};

const order = {
  type: 'object',
  required: ['sku', 'quantity', 'express'],
  properties: {
    sku: { type: 'string', pattern: '^[A-Z]{3}-[0-9]+$', minLength: 5, maxLength: 12 },
    quantity: { type: 'integer', minimum: 1, maximum: 100 },
    unitPrice: { type: 'number', minimum: 0 },
    express: { type: 'boolean' },
    tier: { type: 'string', enum: ['gold', 'silver'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 2 },
    address: { type: 'object', required: ['city'], properties: { city: { type: 'string' } } },
    meta: { type: 'object', additionalProperties: true },
  },
};

describe('the JSON Schema subset compiled to zod', () => {
  const schema = compile(order);
  const ok = { sku: 'ABC-12', quantity: 3, express: false };

  test('accepts what the schema allows', () => {
    expect(
      schema.parse({ ...ok, unitPrice: 1.5, tier: 'gold', tags: ['a', 'b'], address: { city: 'Berlin' }, meta: { anything: 1 } }),
    ).toEqual({
      ...ok,
      unitPrice: 1.5,
      tier: 'gold',
      tags: ['a', 'b'],
      address: { city: 'Berlin' },
      meta: { anything: 1 },
    });
  });

  test.each([
    ['a missing required field', { sku: 'ABC-12', quantity: 3 }],
    ['a wrong type', { ...ok, quantity: '3' }],
    ['a fraction where an integer is required', { ...ok, quantity: 2.5 }],
    ['a number below its minimum', { ...ok, quantity: 0 }],
    ['a number above its maximum', { ...ok, quantity: 101 }],
    ['a string not matching its pattern', { ...ok, sku: 'abc-12' }],
    ['a string too long', { ...ok, sku: 'ABC-123456789' }],
    ['a value outside the enum', { ...ok, tier: 'bronze' }],
    ['an array item that fails its schema', { ...ok, tags: ['long'] }],
    ['too many array items', { ...ok, tags: ['a', 'b', 'c'] }],
    ['an undeclared field (additionalProperties is false by default)', { ...ok, discount: 99 }],
    ['an undeclared field in a nested object', { ...ok, address: { city: 'Berlin', zip: '1' } }],
    ['a missing required field in a nested object', { ...ok, address: {} }],
    ['infinity', { ...ok, unitPrice: Infinity }],
  ])('refuses %s', (_name, input) => {
    expect(schema.safeParse(input).success).toBe(false);
  });

  test('publishes the schema with additionalProperties made explicit', () => {
    const json = toJsonSchema(InputSchemaSchema.parse(order));
    expect(json).toMatchObject({
      additionalProperties: false,
      properties: { address: { additionalProperties: false }, meta: { additionalProperties: true } },
    });
  });

  test('refuses keywords that do not apply to the type, unknown keywords, and inconsistent ones', () => {
    expect(problems({ type: 'string', minimum: 1 })).toBe('minimum: "minimum" does not apply to type string');
    expect(problems({ type: 'string', format: 'email' })).toMatch(/format/);
    expect(problems({ type: 'object', required: ['a'], properties: {} })).toBe('required[0]: required field "a" is not in properties');
    expect(problems({ type: 'integer', enum: [1, 'two'] })).toBe('enum[1]: enum value "two" is not of type integer');
    expect(problems({ type: 'string', pattern: '(' })).toMatch(/^pattern: invalid pattern/);
    expect(problems({ type: 'number', minimum: 5, maximum: 1 })).toBe('minimum: minimum 5 is above maximum 1');
    expect(problems({ type: 'date' })).toMatch(/unknown type "date"/);
  });

  test('the compiled schema of every shipped keyword round-trips its own example', () => {
    const s: InputSchema = { type: 'array', items: { type: 'integer', enum: [1, 2] }, minItems: 1 };
    expect(compileInputSchema(s).parse([1, 2, 1])).toEqual([1, 2, 1]);
    expect(compileInputSchema(s).safeParse([]).success).toBe(false);
  });
});
