/**
 * A scripted OpenAI-compatible server for tests: `POST /v1/chat/completions` on 127.0.0.1 (a free
 * port), answering from a script (text, tool calls, malformed JSON arguments, unknown tool names,
 * HTTP errors, or a function of the request, sync or async), non-streaming or as server-sent events
 * when the client asks to stream. Every request body is recorded, so tests can assert what the
 * model saw.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedToolCall {
  name: string;
  /** An object (sent as JSON) or the raw arguments string (e.g. malformed JSON). */
  arguments: Record<string, unknown> | string;
  id?: string;
}

export type ScriptedReply =
  | { text: string; toolCalls?: undefined }
  | { text?: string; toolCalls: ScriptedToolCall[] }
  | { status: number; error: string }
  | { hang: true };

/**
 * A reply, or a function choosing one from the request (e.g. echoing what it was offered). The
 * reply to an async function waits until it settles, as for a slow model: a test can act (e.g.
 * approve as a person) between a tool result and the model's next move.
 */
export type ScriptStep = ScriptedReply | ((request: ChatRequest, index: number) => ScriptedReply | Promise<ScriptedReply>);

export interface ChatMessage {
  role: string;
  content?: string | null | Array<{ type: string; text?: string }>;
  tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
  name?: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: Array<{ type: string; function: { name: string; description?: string; parameters?: Record<string, unknown> } }>;
  stream?: boolean;
  [k: string]: unknown;
}

export interface ScriptedServer {
  /** e.g. `http://127.0.0.1:40123/v1`: what OPENAI_BASE_URL / `baseUrl` take. */
  baseUrl: string;
  /** Parsed bodies of every chat completion request, in order. */
  requests: ChatRequest[];
  /** The raw bodies, exactly as received (for "this string never reached the model"). */
  rawBodies: string[];
  /** Authorization headers received (to check the key is sent, and only there). */
  authorizations: string[];
  /** Errors thrown by scripted step functions (assertions about a request); tests check it is empty. */
  errors: Error[];
  /** Appends replies to the script. */
  push(...steps: ScriptStep[]): void;
  /** Replies not yet used. */
  remaining(): number;
  close(): Promise<void>;
}

export interface ScriptedServerOptions {
  /** When set, requests without `Authorization: Bearer <apiKey>` get 401. */
  apiKey?: string;
}

const text = (c: ChatMessage['content']) =>
  typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => (typeof p.text === 'string' ? p.text : '')).join('') : '';

/** All text the model was shown in a request (system, user, assistant and tool messages). */
export function transcript(req: ChatRequest): string {
  return req.messages.map((m) => `[${m.role}] ${text(m.content)}`).join('\n');
}

/** The tool names offered in a request. */
export function offeredTools(req: ChatRequest): string[] {
  return (req.tools ?? []).map((t) => t.function.name).sort();
}

export async function startScriptedOpenAI(script: ScriptStep[] = [], opts: ScriptedServerOptions = {}): Promise<ScriptedServer> {
  const queue = [...script];
  const requests: ChatRequest[] = [];
  const rawBodies: string[] = [];
  const authorizations: string[] = [];
  const errors: Error[] = [];
  const hanging = new Set<http.ServerResponse>();
  let completion = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'POST' || path !== '/v1/chat/completions') {
        send(404, { error: { message: `scripted server: no route ${req.method} ${path}`, type: 'invalid_request_error' } });
        return;
      }
      authorizations.push(String(req.headers.authorization ?? ''));
      if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        // Like OpenAI, echo a masked form of the key that was sent.
        const sent = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
        const masked = sent.length > 8 ? `${sent.slice(0, 3)}***${sent.slice(-4)}` : '***';
        send(401, { error: { message: `Incorrect API key provided: ${masked}.`, type: 'invalid_request_error', code: 'invalid_api_key' } });
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: ChatRequest;
      try {
        body = JSON.parse(raw) as ChatRequest;
      } catch {
        send(400, { error: { message: 'scripted server: body is not JSON', type: 'invalid_request_error' } });
        return;
      }
      const index = requests.length;
      requests.push(body);
      rawBodies.push(raw);
      const step = queue.shift();
      if (step === undefined) {
        // A 400 is not retried by the client: the test fails at once, saying why.
        send(400, { error: { message: `scripted server: no reply left for request #${index + 1}`, type: 'invalid_request_error' } });
        return;
      }
      let reply: ScriptedReply;
      try {
        reply = typeof step === 'function' ? await step(body, index) : step;
      } catch (err) {
        // An assertion inside a scripted step failed: answer with it (a 400 is not retried) and keep it for the test.
        errors.push(err as Error);
        send(400, { error: { message: `scripted step failed: ${(err as Error).message}`, type: 'invalid_request_error' } });
        return;
      }
      if ('hang' in reply) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      if ('status' in reply) {
        send(reply.status, { error: { message: reply.error, type: 'server_error' } });
        return;
      }
      completion += 1;
      const id = `chatcmpl-scripted-${completion}`;
      const toolCalls = (reply.toolCalls ?? []).map((tc, i) => ({
        id: tc.id ?? `call_${completion}_${i}`,
        type: 'function' as const,
        function: { name: tc.name, arguments: typeof tc.arguments === 'string' ? tc.arguments : JSON.stringify(tc.arguments) },
      }));
      const content = reply.text ?? (toolCalls.length > 0 ? null : '');
      const finish = toolCalls.length > 0 ? 'tool_calls' : 'stop';
      const created = Math.floor(Date.now() / 1000);
      const usage = { prompt_tokens: raw.length >> 2, completion_tokens: 10, total_tokens: (raw.length >> 2) + 10 };

      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        const event = (delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}) =>
          res.write(
            `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`,
          );
        event({ role: 'assistant', content: '' }, null);
        if (content) for (let i = 0; i < content.length; i += 16) event({ content: content.slice(i, i + 16) }, null);
        toolCalls.forEach((tc, i) => {
          event({ tool_calls: [{ index: i, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }] }, null);
          const args = tc.function.arguments;
          for (let j = 0; j < args.length; j += 12)
            event({ tool_calls: [{ index: i, function: { arguments: args.slice(j, j + 12) } }] }, null);
        });
        event({}, finish);
        const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
        if (streamOptions?.include_usage) {
          res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
        return;
      }
      send(200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
            finish_reason: finish,
          },
        ],
        usage,
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    rawBodies,
    authorizations,
    errors,
    push: (...steps) => void queue.push(...steps),
    remaining: () => queue.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
