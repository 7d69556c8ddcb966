import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../../test/support/databases';
import { checkConnectorSources, formatConnectorErrors, loadConnectorsFromSources, readConnectorSources, type ConnectorSource } from './load';

const POLICIES = path.join(__dirname, '../../policies');

/** The `file:line: message` lines for these sources. */
function errorsOf(sources: ConnectorSource[] | string, env: Record<string, string> = {}): string[] {
  const list = typeof sources === 'string' ? [{ file: 'policies/connectors/crm.yaml', text: sources }] : sources;
  const r = checkConnectorSources(list, env);
  return r.ok ? [] : formatConnectorErrors(r.errors).split('\n');
}

const crm = (over: Partial<Record<'id' | 'baseUrl' | 'path' | 'action' | 'extra' | 'opExtra', string>> = {}) => `kind: Connector
id: ${over.id ?? 'crm'}
type: rest
baseUrl: ${over.baseUrl ?? 'http://127.0.0.1:9911'}
auth: { header: Authorization, scheme: Bearer, secretEnv: CRM_TOKEN }
${over.extra ?? ''}
operations:
  - action: ${over.action ?? 'crm.discount.update'}
    method: POST
    path: ${over.path ?? '/accounts/{account}/discount'}
    input:
      type: object
      required: [account]
      properties: { account: { type: string } }
${over.opExtra ?? ''}
`;
const env = { CRM_TOKEN: 'tok-123456' };

describe('loading connector documents', () => {
  test('the shipped connectors load on a machine where nothing is configured', () => {
    const r = checkConnectorSources(readConnectorSources(POLICIES), {});
    expect(r.ok && r.connectors.map((c) => c.doc.id)).toEqual(['sandbox']);
  });

  test('the shipped examples are valid once their variables are set (and are not loaded by default)', () => {
    const dir = path.join(POLICIES, 'connectors');
    const examples = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.yaml.example'))
      .map((n) => ({ file: `policies/connectors/${n}`, text: fs.readFileSync(path.join(dir, n), 'utf8') }));
    expect(examples.map((e) => e.file).sort()).toEqual([
      'policies/connectors/crm.yaml.example',
      'policies/connectors/email.yaml.example',
      'policies/connectors/memory.yaml.example',
    ]);
    const r = checkConnectorSources(examples, { CRM_TOKEN: 't', SMTP_USER: 'u', SMTP_PASS: 'p' });
    expect(r.ok ? 'ok' : formatConnectorErrors(r.errors)).toBe('ok');
    expect(readConnectorSources(POLICIES).map((s) => s.file)).toEqual([
      'connectors/sandbox.yaml'.replace(/^/, `${path.basename(POLICIES)}/`),
    ]);
  });

  test('a valid document loads', () => {
    expect(errorsOf(crm(), env)).toEqual([]);
  });

  test('operations declare MCP tool annotations; undeclared ones default to not read-only, destructive', () => {
    const load = (opExtra: string) => {
      const r = loadConnectorsFromSources([{ file: 'policies/connectors/crm.yaml', text: crm({ opExtra }) }], env, { sql: null as never });
      if (!r.ok) throw new Error(formatConnectorErrors(r.errors));
      return r.registry.resolve('crm.discount.update')!.operation.annotations;
    };
    expect(load('')).toEqual({ readOnlyHint: false, destructiveHint: true, idempotentHint: false });
    expect(load('    annotations: { readOnlyHint: true }')).toEqual({ readOnlyHint: true, destructiveHint: false, idempotentHint: false });
    expect(load('    idempotent: true\n    annotations: { destructiveHint: false }')).toEqual({ readOnlyHint: false, destructiveHint: false, idempotentHint: true });
    expect(errorsOf(crm({ opExtra: '    annotations: { readOnly: true }' }), env)).toEqual([
      'policies/connectors/crm.yaml:15: unknown field "readOnly" in operations[0].annotations (known fields: readOnlyHint, destructiveHint, idempotentHint)',
    ]);
  });

  test('an unknown field is refused at its line, naming the fields that are known', () => {
    expect(errorsOf(crm({ opExtra: '    idempotnt: true' }), env)).toEqual([
      'policies/connectors/crm.yaml:15: unknown field "idempotnt" in operations[0] (known fields: action, description, annotations, method, path, input, attributes, idempotent, idempotencyKey, status, timeoutMs, retries)',
    ]);
    expect(errorsOf(crm({ extra: 'timeout: 5' }), env)).toEqual([
      expect.stringMatching(/^policies\/connectors\/crm.yaml:6: unknown field "timeout" \(known fields: kind, id, type/),
    ]);
  });

  test('an unknown keyword in the input schema is refused at its line', () => {
    const text = crm().replace('properties: { account: { type: string } }', 'properties: { account: { type: string, format: email } }');
    expect(errorsOf(text, env)).toEqual([
      'policies/connectors/crm.yaml:14: unknown field "format" in operations[0].input.properties.account (known fields: type, description, enum, minimum, maximum, minLength, maxLength, pattern, items, minItems, maxItems, properties, required, additionalProperties)',
    ]);
  });

  test('a duplicate connector id is refused, naming both places', () => {
    const a = { file: 'policies/connectors/a.yaml', text: crm() };
    const b = { file: 'policies/connectors/b.yaml', text: crm({ action: 'crm.other' }) };
    expect(errorsOf([a, b], env)).toEqual([
      'policies/connectors/b.yaml:2: duplicate connector id "crm" (also in policies/connectors/a.yaml:2)',
    ]);
  });

  test('an action declared by two connectors is refused, naming both', () => {
    const a = { file: 'policies/connectors/a.yaml', text: crm() };
    const b = { file: 'policies/connectors/b.yaml', text: crm({ id: 'crm2' }) };
    expect(errorsOf([a, b], env)).toEqual([
      'policies/connectors/b.yaml:8: action crm.discount.update is already declared by connector crm (policies/connectors/a.yaml:8); an action belongs to one connector',
    ]);
  });

  test('enabling the CRM example next to the default sandbox is refused until the sandbox gives up crm.*', () => {
    const dir = path.join(POLICIES, 'connectors');
    const sources = ['sandbox.yaml', 'crm.yaml.example'].map((n) => ({
      file: `policies/connectors/${n.replace('.example', '')}`,
      text: fs.readFileSync(path.join(dir, n), 'utf8'),
    }));
    expect(errorsOf(sources, { CRM_TOKEN: 't' }).join('\n')).toMatch(/action crm.discount.update is already declared by connector/);
  });

  test('a secret variable that is not set is refused by name', () => {
    expect(errorsOf(crm(), {})).toEqual([
      'policies/connectors/crm.yaml:5: environment variable CRM_TOKEN (auth.secretEnv) is not set; set it, or rename the file to *.yaml.example to disable connector crm',
    ]);
    expect(errorsOf(crm(), { CRM_TOKEN: '' })).toHaveLength(1);
    const broken = errorsOf(crm(), { CRM_TOKEN: 'tok-line-one\n' });
    expect(broken).toEqual([
      'policies/connectors/crm.yaml:5: environment variable CRM_TOKEN contains control characters (a line break?); credentials are one line',
    ]);
  });

  test('a baseUrl that is not http(s), or carries credentials, is refused', () => {
    expect(errorsOf(crm({ baseUrl: 'file:///etc/passwd' }), env)).toEqual([
      'policies/connectors/crm.yaml:4: baseUrl: baseUrl must be http or https, got file',
    ]);
    expect(errorsOf(crm({ baseUrl: 'ftp://crm.example' }), env)).toHaveLength(1);
    expect(errorsOf(crm({ baseUrl: 'http://user:pw@crm.example' }), env)).toEqual([
      'policies/connectors/crm.yaml:4: baseUrl: baseUrl must not contain credentials; use auth.secretEnv',
    ]);
    expect(errorsOf(crm({ baseUrl: 'not a url' }), env)).toHaveLength(1);
  });

  test('a path placeholder that is not a required input field is refused', () => {
    expect(errorsOf(crm({ path: '/accounts/{acount}/discount' }), env)).toEqual([
      'policies/connectors/crm.yaml:10: operations[0].path: path placeholder {acount} is not a property of the input',
    ]);
    const optional = crm({ path: '/accounts/{account}/{id}' }).replace(
      '{ account: { type: string } }',
      '{ account: { type: string }, id: { type: string } }',
    );
    expect(errorsOf(optional, env)).toEqual([expect.stringContaining('path placeholder {id} must be a required input field')]);
    expect(errorsOf(crm({ path: '/accounts/{account}/{x-y}' }), env)).toEqual([expect.stringContaining('placeholders are written {name}')]);
    expect(errorsOf(crm({ path: '/accounts/{account}/../admin' }), env)).toEqual([expect.stringContaining('"." / ".." segments')]);
  });

  test('attributes must name input fields, and retries need an idempotent operation', () => {
    expect(errorsOf(crm({ opExtra: '    attributes: { counterparty: acct }' }), env)).toEqual([
      'policies/connectors/crm.yaml:15: operations[0].attributes.counterparty: attribute counterparty names "acct", which is not a property of the input',
    ]);
    expect(errorsOf(crm({ opExtra: '    retries: 3' }), env)).toEqual([
      expect.stringMatching(/crm.yaml:15: operations\[0\].retries: POST is retried only when idempotent/),
    ]);
    expect(errorsOf(crm({ opExtra: '    retries: 3\n    idempotent: true' }), env)).toEqual([]);
  });

  test('an unknown type, a missing field and broken YAML are reported with their lines', () => {
    expect(errorsOf('kind: Connector\nid: x\ntype: ftp\noperations: []\n')).toEqual([
      'policies/connectors/crm.yaml:3: type: unknown connector type "ftp" (expected rest, email, sandbox or mcp)',
    ]);
    expect(errorsOf('kind: Connector\nid: x\ntype: sandbox\n')).toEqual([
      'policies/connectors/crm.yaml:1: missing required field "operations"',
    ]);
    expect(errorsOf('kind: Connector\nid: x\n  type: [\n')[0]).toMatch(/^policies\/connectors\/crm.yaml:\d+: YAML syntax error/);
    expect(errorsOf('kind: Connector\nid: x\ntype: sandbox\noperations: [{ action: crm.refund }]\n')).toEqual([
      expect.stringMatching(/crm.yaml:4: operations\[0\].action: crm.refund is not a sandbox operation; add simulates:/),
    ]);
  });

  test('every problem in every file is reported at once, in file and line order', () => {
    const errors = errorsOf(
      [
        { file: 'policies/connectors/b.yaml', text: crm({ baseUrl: 'gopher://x', opExtra: '    bogus: 1' }) },
        { file: 'policies/connectors/a.yaml', text: crm({ id: 'other', action: 'a.b' }) },
      ],
      {},
    );
    expect(errors.map((e) => e.replace(/: .*/, ''))).toEqual([
      'policies/connectors/a.yaml:5',
      'policies/connectors/b.yaml:4',
      'policies/connectors/b.yaml:15',
    ]);
  });

  test('a directory without connectors/ loads as no connectors', () => {
    expect(readConnectorSources(tmpDir())).toEqual([]);
  });
});
