import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatLoadError, loadBundleFromSources, loadPolicies, readPolicySources, type LoadError, type PolicySource } from './load';
import { authorityJsonSchemaText } from './schema';

const POLICIES = join(__dirname, '..', '..', 'policies');

/** A valid document; tests replace one line to make it wrong. */
const BASE = `kind: Authority
id: vic
version: 3
delegator: user:vic
delegate: twin:vp-sales-twin
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2027-01-01T00:00:00Z }
mode: execute
currency: EUR
hours: { tz: Europe/Berlin, days: [mon, tue, wed, thu, fri], from: "08:00", until: "19:00" }
grants:
  - action: crm.discount.update
    outcome: execute
    when: { counterparty: { $in: [acme, globex] }, discountPct: { $lte: 15 } }
    limits:
      perAction: "10000"
      perPeriod: { amount: "50000", period: month }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
        - { above: "25000", approvers: [role:cfo], quorum: 2 }
      expiresAfter: PT48H
forbid:
  - { action: payments.transfer, reason: Treasury moves are never delegated }
`;

const FILE = 'policies/authorities/vic.yaml';

/** Line (1-based) of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`not found: ${needle}`);
  return i + 1;
}

function errorsOf(sources: PolicySource[]): LoadError[] {
  const r = loadBundleFromSources(sources);
  if (r.ok) throw new Error('expected the load to fail');
  return r.errors;
}

function refuse(text: string, file = FILE): LoadError[] {
  return errorsOf([{ file, text }]);
}

const edit = (from: string, to: string) => {
  if (!BASE.includes(from)) throw new Error(`not in BASE: ${from}`);
  return BASE.replace(from, to);
};

describe('loading authority documents', () => {
  it('accepts the base document and compiles it', () => {
    const r = loadBundleFromSources([{ file: FILE, text: BASE }]);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.bundle.version).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect([...r.bundle.authorities.keys()]).toEqual(['vic']);
    }
  });

  it('loads the shipped examples without errors', () => {
    const r = loadPolicies(POLICIES);
    if (!r.ok) throw new Error(r.errors.map(formatLoadError).join('\n'));
    expect([...r.bundle.authorities.keys()].sort()).toEqual(['cfo-twin', 'interim-cfo-twin', 'ops-twin', 'procurement-twin', 'vp-sales-twin']);
    expect(r.bundle.files).toContain('policies/authorities/vp-sales-twin.yaml');
  });

  it('refuses a YAML syntax error with its line', () => {
    const text = edit('  - { action: payments.transfer, reason: Treasury moves are never delegated }', '  - { action: payments.transfer, reason: [unclosed }');
    const [e] = refuse(text);
    expect(e).toMatchObject({ file: FILE, line: lineOf(text, '[unclosed') });
    expect(e!.message).toMatch(/^YAML syntax error: /);
  });

  it('refuses a key given twice', () => {
    const text = edit('mode: execute\n', 'mode: execute\nmode: propose\n');
    const [e] = refuse(text);
    expect(e!.message).toMatch(/YAML syntax error: Map keys must be unique/);
    expect(e!.line).toBe(lineOf(text, 'mode: propose'));
  });

  it('refuses an unknown top-level field, naming it and suggesting the right one', () => {
    const text = edit('forbid:\n', 'forbids:\n');
    expect(refuse(text)).toEqual([{ file: FILE, line: lineOf(text, 'forbids:'), message: 'unknown field "forbids" (did you mean forbid?)' }]);
  });

  it('refuses an unknown field inside a grant with its line', () => {
    const text = edit('    limits:\n', '    limit:\n');
    const errors = refuse(text);
    expect(errors).toEqual([{ file: FILE, line: lineOf(text, 'limit:'), message: 'unknown field "limit" in grants[0] (did you mean limits?)' }]);
  });

  it('refuses an amount with digit separators', () => {
    const text = edit('perAction: "10000"', 'perAction: "12,000"');
    expect(refuse(text)).toEqual([
      { file: FILE, line: lineOf(text, 'perAction'), message: 'grants[0].limits.perAction: amount "12,000" has digit separators; write it as a plain decimal such as "12000.00"' },
    ]);
  });

  it('refuses an amount with more decimals than the currency has', () => {
    const text = edit('perAction: "10000"', 'perAction: "1.234"');
    expect(refuse(text)).toEqual([{ file: FILE, line: lineOf(text, 'perAction'), message: 'grants[0].limits.perAction: amount "1.234" has 3 decimals; EUR allows 2 decimals' }]);
  });

  it('accepts three decimals in a three-decimal currency and refuses decimals in yen', () => {
    expect(loadBundleFromSources([{ file: FILE, text: edit('currency: EUR', 'currency: BHD').replace('perAction: "10000"', 'perAction: "1.234"') }]).ok).toBe(true);
    const yen = edit('currency: EUR', 'currency: JPY').replace('perAction: "10000"', 'perAction: "100.5"');
    expect(refuse(yen)[0]!.message).toBe('grants[0].limits.perAction: amount "100.5" has 1 decimals; JPY allows no decimals');
  });

  it('refuses a negative amount and an unquoted number', () => {
    const negative = edit('perAction: "10000"', 'perAction: "-5"');
    expect(refuse(negative)[0]).toMatchObject({ line: lineOf(negative, 'perAction'), message: 'grants[0].limits.perAction: amount "-5" is negative; amounts cannot be negative' });
    const unquoted = edit('perAction: "10000"', 'perAction: 10000.5');
    expect(refuse(unquoted)[0]).toMatchObject({ line: lineOf(unquoted, 'perAction'), message: 'grants[0].limits.perAction: amount must be a quoted decimal string such as "10000.00", got 10000.5' });
  });

  it('refuses an unknown mode', () => {
    const text = edit('mode: execute', 'mode: autopilot');
    expect(refuse(text)).toEqual([{ file: FILE, line: lineOf(text, 'mode:'), message: 'mode: unknown mode "autopilot" (expected propose, approve or execute)' }]);
  });

  it('refuses an unknown grant outcome and period', () => {
    const text = edit('    outcome: execute', '    outcome: deny').replace('period: month', 'period: fortnight');
    const errors = refuse(text);
    expect(errors.map((e) => [e.line, e.message])).toEqual([
      [lineOf(text, 'outcome: deny'), 'grants[0].outcome: unknown mode "deny" (expected propose, approve or execute)'],
      [lineOf(text, 'fortnight'), 'grants[0].limits.perPeriod.period: unknown period "fortnight" (expected day, week, month, quarter or year)'],
    ]);
  });

  it('refuses an unknown currency', () => {
    const text = edit('currency: EUR', 'currency: EURO');
    expect(refuse(text)).toEqual([{ file: FILE, line: lineOf(text, 'currency:'), message: 'currency: unknown currency "EURO" (expected an ISO 4217 code such as EUR, USD, JPY)' }]);
  });

  it('refuses an invalid time zone', () => {
    const text = edit('tz: Europe/Berlin', 'tz: Europe/Berlín');
    expect(refuse(text)).toEqual([{ file: FILE, line: lineOf(text, 'hours:'), message: 'hours.tz: invalid time zone "Europe/Berlín" (expected an IANA name such as Europe/Berlin)' }]);
  });

  it('refuses impossible dates and a validity that ends before it starts', () => {
    const impossible = edit('from: 2026-01-01T00:00:00Z', 'from: 2026-02-30T00:00:00Z');
    expect(refuse(impossible)[0]).toMatchObject({ line: lineOf(impossible, 'valid:'), message: expect.stringMatching(/^valid.from: invalid date "2026-02-30T00:00:00Z"/) });
    const reversed = edit('until: 2027-01-01T00:00:00Z', 'until: 2025-01-01T00:00:00Z');
    expect(refuse(reversed)[0]).toMatchObject({ message: 'valid.until: valid.until must be after valid.from' });
  });

  it('refuses bad hours', () => {
    const text = edit('from: "08:00", until: "19:00"', 'from: "8am", until: "19:00"');
    expect(refuse(text)[0]!.message).toBe('hours.from: invalid time "8am" (expected "HH:MM" from 00:00 to 24:00)');
    const day = edit('days: [mon,', 'days: [monday,');
    expect(refuse(day)[0]!.message).toBe('hours.days[0]: unknown day "monday" (expected mon, tue, wed, thu, fri, sat or sun)');
  });

  it('refuses a missing required field', () => {
    const text = edit('delegate: twin:vp-sales-twin\n', '');
    expect(refuse(text)).toEqual([{ file: FILE, line: 1, message: 'missing required field "delegate"' }]);
  });

  it('refuses a document of another kind', () => {
    const text = edit('kind: Authority', 'kind: Connector');
    expect(refuse(text)[0]).toMatchObject({ line: 1, message: 'kind: kind must be Authority, got "Connector"' });
  });

  it('refuses an unknown condition operator, which CASL would silently never match', () => {
    const text = edit('discountPct: { $lte: 15 }', 'discountPct: { $lessThan: 15 }');
    const [e] = refuse(text);
    expect(e!.line).toBe(lineOf(text, '$lessThan'));
    expect(e!.message).toMatch(/^grants\[0\]\.when\.discountPct\.\$lessThan: unknown operator "\$lessThan" \(supported: \$eq, /);
  });

  it('refuses top-level operators and malformed operator values in conditions', () => {
    const or = edit('when: { counterparty: { $in: [acme, globex] }, discountPct: { $lte: 15 } }', 'when: { $or: [{ counterparty: acme }] }');
    expect(refuse(or)[0]!.message).toMatch(/"\$or" cannot be used at the top of when/);
    const notList = edit('{ $in: [acme, globex] }', '{ $in: acme }');
    expect(refuse(notList)[0]!.message).toMatch(/\$in takes a list/);
    const regex = edit('{ $in: [acme, globex] }', '{ $regex: "([" }');
    expect(refuse(regex)[0]!.message).toMatch(/\$regex is not a valid regular expression/);
  });

  it('refuses an approval quorum that named approvers can never reach', () => {
    const text = edit('[role:cfo], quorum: 2', '[user:dana], quorum: 2');
    expect(refuse(text)[0]).toMatchObject({ line: lineOf(text, 'user:dana'), message: 'grants[0].approval.tiers[1].quorum: quorum 2 can never be reached by 1 named approver(s)' });
  });

  it('refuses two tiers starting at the same amount', () => {
    const text = edit('above: "25000"', 'above: "0.00"');
    expect(refuse(text)[0]!.message).toBe('grants[0].approval.tiers[1].above: two tiers start above 0.00');
  });

  it('refuses an invalid approval expiry', () => {
    const text = edit('expiresAfter: PT48H', 'expiresAfter: 48h');
    expect(refuse(text)[0]).toMatchObject({ line: lineOf(text, 'expiresAfter'), message: 'grants[0].approval.expiresAfter: invalid duration "48h" (expected ISO 8601 such as PT48H or P2D)' });
  });

  it('refuses an empty file', () => {
    expect(refuse('# only a comment\n')).toEqual([{ file: FILE, line: 1, message: 'no Authority document in this file' }]);
  });

  it('refuses the same id in two files, pointing at both', () => {
    const errors = errorsOf([
      { file: 'policies/authorities/a.yaml', text: BASE },
      { file: 'policies/authorities/b.yaml', text: '# another copy\n' + BASE },
    ]);
    expect(errors).toEqual([{ file: 'policies/authorities/b.yaml', line: 3, message: 'duplicate id "vic" (also in policies/authorities/a.yaml:2)' }]);
  });

  it('refuses a parent that does not exist', () => {
    const text = edit('parent: null', 'parent: cfo-twin');
    expect(refuse(text)).toEqual([{ file: FILE, line: lineOf(text, 'parent:'), message: 'parent "cfo-twin" does not exist' }]);
  });

  it('refuses a cycle in parents', () => {
    const a = edit('id: vic', 'id: a').replace('parent: null', 'parent: b');
    const b = edit('id: vic', 'id: b').replace('parent: null', 'parent: a').replace('twin:vp-sales-twin', 'twin:b');
    const errors = errorsOf([
      { file: 'policies/authorities/a.yaml', text: a },
      { file: 'policies/authorities/b.yaml', text: b },
    ]);
    expect(errors).toEqual([
      { file: 'policies/authorities/a.yaml', line: lineOf(a, 'parent:'), message: 'cycle in parents: a → b → a' },
      { file: 'policies/authorities/b.yaml', line: lineOf(b, 'parent:'), message: 'cycle in parents: b → a → b' },
    ]);
  });

  it('refuses an authority that is its own parent', () => {
    const text = edit('parent: null', 'parent: vic');
    expect(refuse(text)[0]).toMatchObject({ line: lineOf(text, 'parent:'), message: 'parent: an authority cannot be its own parent' });
  });

  it('refuses a child whose mode or currency widens its parent', () => {
    const parent = edit('mode: execute', 'mode: approve');
    const child = edit('id: vic', 'id: child').replace('parent: null', 'parent: vic').replace('currency: EUR', 'currency: USD').replace('twin:vp-sales-twin', 'twin:child');
    const errors = errorsOf([
      { file: 'policies/authorities/parent.yaml', text: parent },
      { file: 'policies/authorities/child.yaml', text: child },
    ]);
    expect(errors).toEqual([
      { file: 'policies/authorities/child.yaml', line: lineOf(child, 'mode:'), message: "mode execute widens parent vic's mode approve; a child can only narrow its parent" },
      { file: 'policies/authorities/child.yaml', line: lineOf(child, 'currency:'), message: "currency USD differs from parent vic's EUR; a child uses its parent's currency" },
    ]);
  });

  it('reports every problem of every file at once and applies none of them', () => {
    const r = loadBundleFromSources([
      { file: 'policies/authorities/good.yaml', text: BASE },
      { file: 'policies/authorities/bad.yaml', text: edit('id: vic', 'id: other').replace('mode: execute', 'mode: fast').replace('currency: EUR', 'currency: EURO') },
    ]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.file)).toEqual(['policies/authorities/bad.yaml', 'policies/authorities/bad.yaml']);
  });

  it('does not tell a child its parent is missing when the parent is merely invalid', () => {
    const parent = edit('mode: execute', 'mode: fast');
    const child = edit('id: vic', 'id: child').replace('parent: null', 'parent: vic').replace('twin:vp-sales-twin', 'twin:child');
    const errors = errorsOf([
      { file: 'policies/authorities/parent.yaml', text: parent },
      { file: 'policies/authorities/child.yaml', text: child },
    ]);
    expect(errors.map((e) => e.message)).toEqual(['mode: unknown mode "fast" (expected propose, approve or execute)']);
  });

  it('accepts several documents in one file separated by ---', () => {
    const second = edit('id: vic', 'id: vic-2').replace('twin:vp-sales-twin', 'twin:other');
    const r = loadBundleFromSources([{ file: FILE, text: `${BASE}---\n${second}` }]);
    expect(r.ok && [...r.bundle.authorities.keys()]).toEqual(['vic', 'vic-2']);
  });

  it('gives the same version whatever order the files come in, and another when a byte changes', () => {
    const files = [
      { file: 'policies/authorities/a.yaml', text: BASE },
      { file: 'policies/authorities/b.yaml', text: edit('id: vic', 'id: b').replace('twin:vp-sales-twin', 'twin:b') },
    ];
    const one = loadBundleFromSources(files);
    const two = loadBundleFromSources([...files].reverse());
    const changed = loadBundleFromSources([files[0]!, { ...files[1]!, text: files[1]!.text + '\n' }]);
    expect(one.ok && two.ok && changed.ok).toBe(true);
    if (one.ok && two.ok && changed.ok) {
      expect(one.bundle.version).toBe(two.bundle.version);
      expect(changed.bundle.version).not.toBe(one.bundle.version);
    }
  });

  it('labels files relative to the policies directory parent and refuses a missing directory', () => {
    const read = readPolicySources(POLICIES);
    expect(read.ok && read.sources.map((s) => s.file)).toContain('policies/authorities/cfo-twin.yaml');
    const missing = loadPolicies(join(POLICIES, 'nowhere'));
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.errors[0]).toMatchObject({ file: 'nowhere/authorities', line: 0, message: expect.stringMatching(/^no such directory/) });
  });

  it('formats errors as file:line: message', () => {
    expect(formatLoadError({ file: FILE, line: 14, message: 'x' })).toBe('policies/authorities/vic.yaml:14: x');
  });
});

describe('the published JSON Schema', () => {
  it('is the file in policies/, generated from the zod schema', () => {
    // Regenerate with writeAuthorityJsonSchema('policies/authority.schema.json') after schema changes.
    expect(readFileSync(join(POLICIES, 'authority.schema.json'), 'utf8')).toBe(authorityJsonSchemaText());
  });

  it('is strict and describes the normative shape', () => {
    const schema = JSON.parse(authorityJsonSchemaText());
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(expect.arrayContaining(['kind', 'id', 'version', 'delegator', 'delegate', 'valid', 'mode', 'currency', 'grants']));
    expect(schema.properties.mode.enum).toEqual(['propose', 'approve', 'execute']);
    expect(schema.properties.currency.enum).toContain('JPY');
    const grant = schema.properties.grants.items;
    expect(grant.additionalProperties).toBe(false);
    expect(grant.properties.limits.properties.perPeriod.properties.period.enum).toEqual(['day', 'week', 'month', 'quarter', 'year']);
  });
});
