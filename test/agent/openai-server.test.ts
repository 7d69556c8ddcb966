/** The scripted server itself, through the real @langchain/openai client (non-streaming and streaming). */
import { ChatOpenAI } from '@langchain/openai';
import { AIMessage, AIMessageChunk } from '@langchain/core/messages';
import { startScriptedOpenAI, type ScriptedServer } from '../support/openai-server';

let server: ScriptedServer;
afterEach(() => server.close());

const tools = [
  {
    type: 'function' as const,
    function: { name: 'crm_note_create', description: 'note', parameters: { type: 'object', properties: { text: { type: 'string' } } } },
  },
];

function client(streaming: boolean, apiKey = 'sk-a') {
  return new ChatOpenAI({ model: 'm', apiKey, streaming, maxRetries: 0, configuration: { baseURL: server.baseUrl } }).bindTools(tools);
}

/** Streaming through `.stream()` (what a streaming caller does; `.invoke` would also estimate tokens with tiktoken, over the network). */
async function ask(streaming: boolean, input: string): Promise<AIMessage> {
  if (!streaming) return (await client(false).invoke(input)) as AIMessage;
  let acc: AIMessageChunk | undefined;
  for await (const chunk of await client(true).stream(input)) acc = acc ? acc.concat(chunk) : chunk;
  return new AIMessage({ content: acc!.content, tool_calls: acc!.tool_calls });
}

test.each([false, true])('tool calls and text come back through the real client (streaming: %s)', async (streaming) => {
  server = await startScriptedOpenAI([
    {
      text: 'Writing a note because the customer called.',
      toolCalls: [{ name: 'crm_note_create', arguments: { text: 'called back about the renewal' } }],
    },
    { text: 'All done, a fairly long final answer that arrives in several chunks when streamed.' },
  ]);
  const first = await ask(streaming, 'go');
  expect(first.content).toBe('Writing a note because the customer called.');
  expect(first.tool_calls).toEqual([expect.objectContaining({ name: 'crm_note_create', args: { text: 'called back about the renewal' } })]);
  const second = await ask(streaming, 'and?');
  expect(second.content).toBe('All done, a fairly long final answer that arrives in several chunks when streamed.');
  expect(second.tool_calls).toEqual([]);
  expect(server.requests.map((r) => Boolean(r.stream))).toEqual([streaming, streaming]);
  expect(server.requests[0]!.tools!.map((t) => t.function.name)).toEqual(['crm_note_create']);
  expect(server.requests[1]!.messages).toEqual([{ role: 'user', content: 'and?' }]);
});

test('malformed JSON arguments arrive as an invalid tool call', async () => {
  server = await startScriptedOpenAI([{ toolCalls: [{ name: 'crm_note_create', arguments: '{"text": "unterminated' }] }]);
  const msg = (await client(false).invoke('go')) as AIMessage;
  expect(msg.tool_calls).toEqual([]);
  expect(msg.invalid_tool_calls).toEqual([expect.objectContaining({ name: 'crm_note_create', args: '{"text": "unterminated' })]);
});

test('checks the key, answers scripted HTTP errors, and says when the script ran out', async () => {
  server = await startScriptedOpenAI([{ status: 503, error: 'overloaded' }], { apiKey: 'sk-right' });
  await expect(client(false, 'sk-wrong').invoke('x')).rejects.toThrow(/401|Incorrect API key/);
  await expect(client(false, 'sk-right').invoke('x')).rejects.toThrow(/503|overloaded/);
  await expect(client(false, 'sk-right').invoke('x')).rejects.toThrow(/no reply left for request #2/);
  expect(server.authorizations).toEqual(['Bearer sk-wrong', 'Bearer sk-right', 'Bearer sk-right']);
  expect(server.rawBodies).toHaveLength(2); // the unauthorized request is not recorded as one the model saw
});
