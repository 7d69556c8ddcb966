/**
 * Runs saved by earlier versions still resume: every state in test/fixtures/run-state is read by
 * today's planners and its run continues where it stood, and each planner's current state version
 * has a fixture of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createLlmPlanner } from '../../src/agent/llm';
import { parseRunState, STATE_VERSION } from '../../src/agent/llm/state';
import { createPlaybookPlanner, PLAYBOOK_STATE_VERSION, readPlaybookState } from '../../src/agent/playbook';
import { createLogger } from '../../src/log/logger';
import { loadPlaybooks } from '../../src/objectives/playbooks';
import { startScriptedOpenAI, transcript, type ScriptedServer } from '../support/openai-server';
import { DISCOUNT_TOOL, EMAIL_TOOL, FakeWorld, NOTE_TOOL, memoryLog } from './support/fake-context';

const DIR = path.resolve(__dirname, '../fixtures/run-state');
const fixtures = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));
const read = (f: string): unknown => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8'));
const versionOf = (f: string) => Number(/-v(\d+)-/.exec(f)?.[1]);

describe('saved run states of every version', () => {
  it('has a fixture of each planner’s current state version, and names every fixture by planner and version', () => {
    expect(fixtures.filter((f) => f.startsWith('llm-') && versionOf(f) === STATE_VERSION)).not.toHaveLength(0);
    expect(fixtures.filter((f) => f.startsWith('playbook-') && versionOf(f) === PLAYBOOK_STATE_VERSION)).not.toHaveLength(0);
    for (const f of fixtures) expect(f).toMatch(/^(llm|playbook)-v\d+-[a-z0-9-]+\.json$/);
  });

  it.each(fixtures.filter((f) => f.startsWith('llm-')))('%s is read by the LLM planner', (f) => {
    const state = parseRunState(read(f));
    expect(state).not.toBeNull();
    expect(state!.turns.length).toBeGreaterThan(0);
  });

  it.each(fixtures.filter((f) => f.startsWith('playbook-')))('%s is read by the playbook planner', (f) => {
    expect(Object.keys(readPlaybookState(read(f)).steps).length).toBeGreaterThan(0);
  });

  describe('an LLM run saved waiting for approval resumes', () => {
    const API_KEY = 'sk-test-fixtures-0123456789';
    let server: ScriptedServer;
    beforeEach(async () => {
      server = await startScriptedOpenAI([], { apiKey: API_KEY });
    });
    afterEach(async () => {
      await server.close();
      expect(server.errors).toEqual([]);
    });

    it('sends the saved conversation to the model, shows the decision, and keys its next request after the saved ones', async () => {
      const saved = read('llm-v1-waiting-for-approval.json') as { turns: unknown[] };
      const w = new FakeWorld({ tools: [DISCOUNT_TOOL, NOTE_TOOL, EMAIL_TOOL] });
      const planner = createLlmPlanner({
        baseUrl: server.baseUrl,
        apiKey: API_KEY,
        model: 'scripted-model',
        log: createLogger('debug', { stream: memoryLog().stream }),
        timeoutMs: 5000,
        maxRetries: 0,
      });
      server.push(
        (req) => {
          expect(transcript(req)).toContain('llm-step-2, crm_discount_update (crm.discount.update): executed, proposal p-2');
          return {
            text: 'Sending the confirmation.',
            toolCalls: [
              {
                name: 'sandbox_email_send',
                arguments: { to: ['<EMAIL_1>'], subject: 'Your renewal', body: '20% applied.', dataClass: 'internal' },
              },
            ],
          };
        },
        { text: 'Acme keeps its renewal at 20%; <EMAIL_1> was told.' },
      );
      const result = await planner.run(
        w.context({
          state: read('llm-v1-waiting-for-approval.json'),
          updates: [{ key: 'llm-step-2', outcome: { kind: 'executed', proposalId: 'p-2', reasons: [], result: { discountPct: 20 } } }],
        }),
      );
      expect(result).toEqual({ status: 'completed', summary: 'Acme keeps its renewal at 20%; dana.smith@acme.example was told.' });
      // The saved turns went to the model as they were: system prompt, then the five saved turns.
      expect(server.requests[0]!.messages.map((m) => m.role).slice(0, 1 + saved.turns.length)).toEqual([
        'system',
        'user',
        'assistant',
        'tool',
        'assistant',
        'tool',
      ]);
      // One new request, keyed after the saved step counter, with the address restored from the saved mapping.
      expect(w.acts.map((a) => [a.call.key, a.call.action, a.call.args.to])).toEqual([
        ['llm-step-3', 'sandbox.email.send', ['dana.smith@acme.example']],
      ]);
    });
  });

  it('a playbook run saved waiting for approval resumes with the same step, and takes the next once it executed', async () => {
    const loaded = loadPlaybooks(path.resolve(__dirname, '../../policies'));
    if (!loaded.ok) throw new Error(`the shipped playbooks do not load: ${JSON.stringify(loaded.errors)}`);
    const playbook = loaded.playbooks.get('renewal-discount')!;
    const w = new FakeWorld({
      tools: [DISCOUNT_TOOL, NOTE_TOOL],
      objective: {
        playbook: 'renewal-discount',
        params: { account: 'acme', discountPct: 12, amount: '1200.00', currency: 'EUR', reason: 'at risk' },
      },
    });
    // The step already submitted answers from its existing proposal (as the pipeline does per key).
    w.proposals.set('discount', {
      id: 'p-1',
      call: { action: 'crm.discount.update', args: {}, rationale: '', key: 'discount' },
      outcome: { kind: 'executed', proposalId: 'p-1', reasons: [] },
    });
    const result = await createPlaybookPlanner(playbook).run(w.context({ state: read('playbook-v1-waiting-for-approval.json') }));
    expect(result.status).toBe('completed');
    expect(w.acts.map((a) => [a.call.key, a.replay])).toEqual([
      ['discount', true],
      ['note', false],
    ]);
    expect(readPlaybookState(w.state).steps).toEqual({
      discount: { status: 'executed', proposalId: 'p-1' },
      note: { status: 'executed', proposalId: 'p-2' },
    });
  });

  it('refuses a state it cannot read, saying which part and that the run is not started over', () => {
    expect(() => readPlaybookState({ v: 2, steps: {} })).toThrow(
      /has version 2, this Regent reads version 1; the run is failed rather than started over/,
    );
    expect(() => readPlaybookState({ v: 1, steps: { discount: { status: 'halfway' } } })).toThrow(
      /cannot be read \(steps\.discount\.status: /,
    );
    expect(() => readPlaybookState('garbage')).toThrow(/cannot be read/);
    expect(() => parseRunState({ ...(read('llm-v1-waiting-for-approval.json') as object), version: 2 })).toThrow(
      /has version 2, this Regent reads version 1/,
    );
  });
});
