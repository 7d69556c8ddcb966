/**
 * Agent frameworks pointed at Regent's `/mcp` the way their users wire them: LangChain's
 * `createAgent` with `@langchain/mcp-adapters` (v1 MCP SDK, a 2025 protocol) and the OpenAI
 * Agents SDK with `MCPServerStreamableHttp` (v2 client, negotiating 2026-07-28), each driven by
 * the scripted OpenAI-compatible model. What is asserted is what the model was actually sent
 * (the scripted server's recorded requests) and what Regent recorded.
 *
 * The twin's authority grants three sandbox operations: notes run at once, discounts wait for a
 * sales director, and supplier repricing is granted but forbidden for contoso. The model lists
 * its tools, writes a note (executed), reprices at contoso (denied: the forbid's reason must reach
 * the model), asks for a discount (held for REGENT_MCP_HOLD_MS, then pending_approval); a person
 * approves it through Regent's API while the model "thinks", and the model's
 * regent_proposal_status call then comes back executed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createAgent } from 'langchain';
import { ChatOpenAI } from '@langchain/openai';
import { MultiServerMCPClient } from '@langchain/mcp-adapters';
import { Agent, MCPServerStreamableHttp, OpenAIProvider, Runner, setTracingDisabled } from '@openai/agents';
import { exportJournal } from '../../src/journal/export';
import { verifyExport } from '../../src/journal/verify';
import { call } from '../support/api';
import { describeEachDatabase, tmpDir } from '../support/databases';
import {
  offeredTools,
  startScriptedOpenAI,
  type ChatMessage,
  type ChatRequest,
  type ScriptStep,
  type ScriptedServer,
} from '../support/openai-server';
import { startRegentApi, type RegentApi } from '../support/regent-api';

const HOLD_MS = 1500;
const GRANTED = ['crm_discount_update', 'crm_note_create', 'erp_supplier_reprice', 'regent_proposal_status'];
const FORBID_REASON = 'Contoso prices are negotiated by procurement, never by a twin';

const authority = (id: string) => `kind: Authority
id: ${id}
version: 1
delegator: user:vic
delegate: twin:${id}
parent: null
valid: { from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z }
mode: execute
currency: EUR
grants:
  - action: crm.note.create
    outcome: execute
  - action: crm.discount.update
    outcome: approve
    when: { discountPct: { $lte: 30 } }
    approval:
      tiers:
        - { above: "0", approvers: [role:sales-director], quorum: 1 }
      expiresAfter: PT48H
  - action: erp.supplier.reprice
    outcome: execute
    limits: { perAction: "50000" }
forbid:
  - action: erp.supplier.reprice
    when: { counterparty: contoso }
    reason: ${FORBID_REASON}
`;

const text = (c: ChatMessage['content']) =>
  typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => (typeof p.text === 'string' ? p.text : '')).join('') : '';

/** The tool messages a request carries, by the id of the tool call they answer. */
function toolResult(req: ChatRequest, callId: string): string {
  const m = req.messages.find((x) => x.role === 'tool' && x.tool_call_id === callId);
  if (!m) throw new Error(`no tool message for ${callId} in: ${JSON.stringify(req.messages.map((x) => x.role))}`);
  return text(m.content);
}

describeEachDatabase('Agent frameworks over /mcp', (getDb) => {
  let api: RegentApi;
  const keys: Record<string, string> = {};
  const models: ScriptedServer[] = [];

  beforeAll(async () => {
    api = await startRegentApi(getDb(), {
      extraPolicies: { 'authorities/fw-langchain.yaml': authority('fw-langchain'), 'authorities/fw-agents.yaml': authority('fw-agents') },
      env: { REGENT_RATE_LIMIT_PER_MINUTE: '0', REGENT_MCP_HOLD_MS: String(HOLD_MS) },
      start: true,
    });
    for (const [id, roles] of [
      ['vic', ['executive']],
      ['sara', ['approver', 'sales-director']],
    ] as const) {
      keys[id] = (await call(`${api.url}/v1/users`, 'POST', api.adminKey, { id, name: id, roles })).body!.apiKey;
    }
    for (const twin of ['fw-langchain', 'fw-agents'])
      keys[twin] = (
        await call(`${api.url}/v1/twins`, 'POST', keys.vic!, { id: twin, owner: 'user:vic', authority: twin, mode: 'execute' })
      ).body!.apiKey;
  }, 120_000);

  afterAll(async () => {
    for (const m of models) await m.close();
    await api?.close();
  });

  const proposal = async (id: string) => (await call(`${api.url}/v1/proposals/${id}`, 'GET', keys.vic!)).body!;

  async function untilStatus(id: string, status: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const p = await proposal(id);
      if (p.status === status) return p;
      if (Date.now() > deadline) throw new Error(`proposal ${id} is ${p.status}, not ${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * The model's side of the conversation, the same for every framework. Each step checks what the
   * model was given (the tool result of its previous call) and makes the next call; the ids of the
   * proposals it met are kept for the assertions on Regent's side.
   */
  function script(seen: { note?: string; denied?: string; held?: string; status?: string }): ScriptStep[] {
    const idIn = (s: string) => /\(proposal ([^)\s]+)\)/.exec(s)?.[1];
    return [
      () => ({
        toolCalls: [
          { id: 'call_note', name: 'crm_note_create', arguments: { account: 'acme', text: 'Called about the renewal; wants a discount.' } },
        ],
      }),
      (req) => {
        seen.note = toolResult(req, 'call_note');
        return {
          toolCalls: [
            {
              id: 'call_reprice',
              name: 'erp_supplier_reprice',
              arguments: { supplier: 'contoso', item: 'steel-coil', price: '799.00', currency: 'EUR', amount: '2500.00' },
            },
          ],
        };
      },
      (req) => {
        seen.denied = toolResult(req, 'call_reprice');
        return {
          toolCalls: [
            {
              id: 'call_discount',
              name: 'crm_discount_update',
              arguments: { account: 'acme', discountPct: 12, amount: '1200.00', currency: 'EUR' },
            },
          ],
        };
      },
      // The call came back pending_approval: while the model "thinks", a sales director approves
      // it through Regent's API and the sandbox runs it; then the model asks for its status.
      async (req) => {
        seen.held = toolResult(req, 'call_discount');
        const id = idIn(seen.held);
        if (!id) throw new Error(`no proposal id in the held call's result: ${seen.held}`);
        const approved = await call(`${api.url}/v1/proposals/${id}/decisions`, 'POST', keys.sara!, {
          decision: 'approve',
          comment: 'fine for acme',
        });
        if (approved.status !== 200) throw new Error(`approve: ${approved.status} ${JSON.stringify(approved.body)}`);
        await untilStatus(id, 'executed');
        return { toolCalls: [{ id: 'call_status', name: 'regent_proposal_status', arguments: { proposal: id } }] };
      },
      (req) => {
        seen.status = toolResult(req, 'call_status');
        return { text: 'Noted the call, the discount is approved and applied; the contoso repricing is not mine to do.' };
      },
    ];
  }

  /** Everything both frameworks must show: what the model was offered and told, and what Regent recorded. */
  async function expectGoverned(
    model: ScriptedServer,
    seen: { note?: string; denied?: string; held?: string; status?: string },
    twin: string,
    client: { name: RegExp; protocol: string },
  ) {
    expect(model.errors).toEqual([]);
    expect(model.requests).toHaveLength(5);
    expect(model.remaining()).toBe(0);
    // (1) The model was offered exactly the granted operations and the status tool, every time,
    // with Regent's descriptions and schemas (not the other sandbox operations).
    for (const req of model.requests) expect(offeredTools(req)).toEqual(GRANTED);
    const tools = model.requests[0]!.tools!;
    const discount = tools.find((t) => t.function.name === 'crm_discount_update')!.function;
    expect(discount.description).toMatch(new RegExp(`${twin} v1`));
    expect(discount.description).toMatch(/role:sales-director/);
    expect(discount.parameters).toMatchObject({ type: 'object', required: expect.arrayContaining(['account', 'discountPct']) });
    for (const t of tools) expect(t.function.description!.length).toBeGreaterThan(10);

    // (2) The note executed, and the model was told so. (What reaches the model is the result's
    // text line: as it is for the Agents SDK; LangChain's adapters send the content block as JSON,
    // the text line inside it beside structuredContent.)
    expect(seen.note).toMatch(/Executed \(proposal /);
    const noteId = /\(proposal ([^)\s]+)\)/.exec(seen.note!)![1]!;
    const note = await proposal(noteId);
    expect(note).toMatchObject({
      twin,
      action: 'crm.note.create',
      status: 'executed',
      context: { via: 'mcp', mcp: { protocol: client.protocol, tool: 'crm_note_create' } },
    });
    expect(note.context.mcp.client.name).toMatch(client.name);

    // (4) The repricing was denied, and the forbid's reason reached the model in its next request.
    expect(seen.denied).toMatch(/Denied \(proposal /);
    expect(seen.denied).toContain(FORBID_REASON);
    const deniedId = /\(proposal ([^)\s]+)\)/.exec(seen.denied!)![1]!;
    expect(await proposal(deniedId)).toMatchObject({ action: 'erp.supplier.reprice', status: 'denied', decision: { outcome: 'deny' } });

    // (3) The discount was held, answered pending_approval naming the approvers; after the
    // approval the status tool told the model it executed.
    expect(seen.held).toMatch(/Pending approval \(proposal [^)]+\): role:sales-director must approve/);
    expect(seen.held).toMatch(/regent_proposal_status/);
    const heldId = /\(proposal ([^)\s]+)\)/.exec(seen.held!)![1]!;
    expect(seen.status).toMatch(new RegExp(`Executed \\(proposal ${heldId}\\)`));
    const held = await proposal(heldId);
    expect(held).toMatchObject({ action: 'crm.discount.update', status: 'executed', args: { account: 'acme', discountPct: 12 } });

    // The journal has each of them.
    const subjects = async (kind: string) =>
      (
        (await call(`${api.url}/v1/journal?kind=${kind}&limit=1000`, 'GET', api.adminKey)).body!.entries as Array<{
          subject: string;
          data: Record<string, unknown>;
        }>
      ).filter((e) => [noteId, deniedId, heldId].some((id) => e.subject === `proposal:${id}`));
    const decided = await subjects('policy.decided');
    expect(decided.map((e) => e.subject).sort()).toEqual([noteId, deniedId, heldId].map((id) => `proposal:${id}`).sort());
    const reviewed = await subjects('proposal.reviewed');
    expect(reviewed.map((e) => e.subject)).toEqual([`proposal:${heldId}`]);
    const transitions = (await subjects('proposal.transitioned')).filter((e) => e.subject === `proposal:${heldId}`).map((e) => e.data.to);
    expect(transitions).toEqual(expect.arrayContaining(['approved', 'executed']));
  }

  it('LangChain: createAgent with MultiServerMCPClient tools', async () => {
    const seen: Parameters<typeof script>[0] = {};
    const model = await startScriptedOpenAI(script(seen));
    models.push(model);

    // As in the README: the twin's key as a static bearer header.
    const mcp = new MultiServerMCPClient({
      mcpServers: {
        regent: { url: `${api.url}/mcp`, headers: { Authorization: `Bearer ${keys['fw-langchain']}` } },
      },
      useStandardContentBlocks: true,
    });
    try {
      const tools = await mcp.getTools();
      const agent = createAgent({
        model: new ChatOpenAI({ model: 'scripted', apiKey: 'sk-test', maxRetries: 0, configuration: { baseURL: model.baseUrl } }),
        tools,
        systemPrompt:
          'You work for Vic in sales. Use the tools; if one is waiting for approval, check it later with regent_proposal_status.',
      });
      const out = await agent.invoke({
        messages: [{ role: 'user', content: 'Log the acme call, reprice steel coil at contoso, and give acme 12%.' }],
      });
      expect(out.messages.at(-1)!.content).toMatch(/discount is approved/);
    } finally {
      await mcp.close();
    }
    await expectGoverned(model, seen, 'fw-langchain', { name: /^@langchain\/mcp-adapters$/, protocol: '2025-11-25' });
  });

  it('OpenAI Agents SDK: Agent and run with MCPServerStreamableHttp, over chat completions', async () => {
    const seen: Parameters<typeof script>[0] = {};
    const model = await startScriptedOpenAI(script(seen));
    models.push(model);

    setTracingDisabled(true);
    const regent = new MCPServerStreamableHttp({
      name: 'regent',
      url: `${api.url}/mcp`,
      requestInit: { headers: { Authorization: `Bearer ${keys['fw-agents']}` } },
    });
    await regent.connect();
    try {
      const agent = new Agent({
        name: 'sales-assistant',
        instructions:
          'You work for Vic in sales. Use the tools; if one is waiting for approval, check it later with regent_proposal_status.',
        model: 'scripted',
        mcpServers: [regent],
      });
      const runner = new Runner({
        modelProvider: new OpenAIProvider({ baseURL: model.baseUrl, apiKey: 'sk-test', useResponses: false }),
        tracingDisabled: true,
      });
      const result = await runner.run(agent, 'Log the acme call, reprice steel coil at contoso, and give acme 12%.', { maxTurns: 10 });
      expect(result.finalOutput).toMatch(/discount is approved/);
    } finally {
      await regent.close();
    }
    await expectGoverned(model, seen, 'fw-agents', { name: /^regent$/, protocol: '2026-07-28' });
  });

  it('the journal of both runs verifies', async () => {
    const out = path.join(tmpDir(), 'export');
    await exportJournal(api.regent.journal, out, 'jest');
    expect(await verifyExport(out, { keyText: api.regent.journal.vkey })).toMatchObject({ ok: true });
    const entries = fs.readFileSync(path.join(out, 'entries.jsonl'), 'utf8');
    for (const key of [keys['fw-langchain']!, keys['fw-agents']!]) expect(entries).not.toContain(key);
    expect((await call(`${api.url}/v1/journal/verify`, 'GET', api.adminKey)).body).toMatchObject({ ok: true });
  });
});
