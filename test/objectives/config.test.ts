import { loadConfig } from '../../src/config/config';

describe('the language model and agent configuration', () => {
  it('has no model by default: objectives name playbooks', () => {
    const c = loadConfig({});
    expect(c.llm).toBeUndefined();
    expect(c.agent).toEqual({ stepBudget: 20, ratePerMinute: 30 });
  });

  it('takes any OpenAI-compatible endpoint', () => {
    const c = loadConfig({ REGENT_MODEL: 'llama3.1', OPENAI_API_KEY: 'ollama', OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' });
    expect(c.llm).toEqual({ model: 'llama3.1', apiKey: 'ollama', baseUrl: 'http://127.0.0.1:11434/v1' });
    expect(loadConfig({ REGENT_MODEL: 'gpt-4.1-mini', OPENAI_API_KEY: 'sk-x' }).llm).toEqual({ model: 'gpt-4.1-mini', apiKey: 'sk-x', baseUrl: undefined });
  });

  it.each([
    [{ REGENT_MODEL: 'gpt-4.1-mini' }, /^OPENAI_API_KEY: is required when REGENT_MODEL is set/],
    [{ REGENT_MODEL: 'gpt 4', OPENAI_API_KEY: 'k' }, /^REGENT_MODEL: must be a model name without spaces/],
    [{ OPENAI_BASE_URL: 'ftp://models' }, /^OPENAI_BASE_URL: must be an http\(s\) URL/],
    [{ REGENT_AGENT_STEP_BUDGET: '0' }, /^REGENT_AGENT_STEP_BUDGET: /],
    [{ REGENT_AGENT_RATE_PER_MINUTE: 'many' }, /^REGENT_AGENT_RATE_PER_MINUTE: must be a whole number/],
  ])('refuses %j with one line naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
