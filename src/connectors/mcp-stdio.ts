/**
 * The stdio side of an `mcp` connector: Regent runs the server as a child process and speaks
 * newline-delimited JSON-RPC with it (the MCP stdio transport).
 *
 * Written here rather than taken from the SDK because the SDK's StdioClientTransport always adds
 * parts of Regent's own environment (HOME, USER, SHELL, ...) to the child's: this one passes the
 * connector's declared environment and a minimal PATH, nothing else. A line on stdout that is not
 * JSON-RPC breaks the protocol: the child is stopped and the reason kept, so that calls in flight
 * fail as protocol errors rather than hang.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { parseJSONRPCMessage, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/client';

/** A message on stdout larger than this (no newline yet) breaks the protocol. */
const MAX_MESSAGE_BYTES = 10 << 20;
/** One stderr line is cut to this many characters. */
export const MAX_STDERR_LINE = 500;
/** A stderr line not ended within this many bytes is cut and passed on as it is. */
const MAX_STDERR_PENDING = 8192;
const KILL_AFTER_MS = 2000;

/** A PATH for servers that declare none: enough to find node, python and the usual tools. */
export const MINIMAL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface StdioParams {
  command: string;
  args: readonly string[];
  /** The child's whole environment. */
  env: Record<string, string>;
  cwd?: string | undefined;
}

export interface StdioHooks {
  /** A line the server wrote on stderr (cut to MAX_STDERR_LINE). */
  stderr(line: string): void;
  /** The child is gone (after its streams closed). */
  exited(how: string): void;
}

export class StdioChildTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Why the protocol broke (not JSON-RPC on stdout, a message too large), once it did. */
  protocolError: string | null = null;
  private child: ChildProcessWithoutNullStreams | undefined;
  private out = '';
  private err = '';
  private exitedHow: string | null = null;
  private done: Promise<void> | undefined;

  constructor(
    private readonly params: StdioParams,
    private readonly hooks: StdioHooks,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let spawned = false;
      const child = spawn(this.params.command, [...this.params.args], {
        env: this.params.env,
        cwd: this.params.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      this.child = child;
      // A grandchild holding the pipes must not keep close() waiting: exit is enough.
      this.done = new Promise((r) => {
        child.once('exit', () => r());
        child.once('close', () => r());
      });
      child.once('error', (err) => {
        if (!spawned) reject(new Error(`cannot start ${this.params.command}: ${err.message}`));
        else this.onerror?.(err);
      });
      child.once('spawn', () => {
        spawned = true;
        resolve();
      });
      child.once('exit', (code, signal) => {
        this.exitedHow = signal ? `killed by ${signal}` : `exited with code ${code}`;
      });
      child.once('close', () => {
        this.flushStderr();
        this.hooks.exited(this.exitedHow ?? 'closed its streams');
        this.onclose?.();
      });
      // A write to a child that died fails with EPIPE: its exit says what happened.
      child.stdin.on('error', () => undefined);
      child.stdout.on('data', (chunk: Buffer) => this.read(chunk));
      child.stderr.on('data', (chunk: Buffer) => this.readStderr(chunk));
    });
  }

  private read(chunk: Buffer): void {
    if (this.protocolError) return;
    this.out += chunk.toString('utf8');
    for (;;) {
      const i = this.out.indexOf('\n');
      if (i < 0) break;
      const line = this.out.slice(0, i).replace(/\r$/, '');
      this.out = this.out.slice(i + 1);
      if (!line.trim()) continue;
      let message: JSONRPCMessage;
      try {
        message = parseJSONRPCMessage(JSON.parse(line));
      } catch {
        const excerpt = line.length > 120 ? `${line.slice(0, 120)}…` : line;
        this.fail(`the server wrote something that is not JSON-RPC on stdout: ${JSON.stringify(excerpt)}`);
        return;
      }
      this.onmessage?.(message);
    }
    if (this.out.length > MAX_MESSAGE_BYTES) this.fail(`the server sent a message over ${MAX_MESSAGE_BYTES} bytes`);
  }

  private readStderr(chunk: Buffer): void {
    this.err += chunk.toString('utf8');
    for (;;) {
      const i = this.err.indexOf('\n');
      if (i < 0) break;
      const line = this.err.slice(0, i).replace(/\r$/, '');
      this.err = this.err.slice(i + 1);
      if (line.trim()) this.hooks.stderr(cut(line));
    }
    if (this.err.length > MAX_STDERR_PENDING) {
      this.hooks.stderr(cut(this.err));
      this.err = '';
    }
  }

  private flushStderr(): void {
    if (this.err.trim()) this.hooks.stderr(cut(this.err));
    this.err = '';
  }

  private fail(reason: string): void {
    if (this.protocolError) return;
    this.protocolError = reason;
    this.onerror?.(new Error(reason));
    void this.close();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const child = this.child;
    if (!child || this.exitedHow || this.protocolError) throw new Error(this.protocolError ?? `the server ${this.exitedHow ?? 'is not running'}`);
    await new Promise<void>((resolve, reject) => {
      child.stdin.write(`${JSON.stringify(message)}\n`, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Stops the child: stdin closed and SIGTERM, SIGKILL if it is still there after a while. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child || !this.done) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      timer.unref();
      await this.done;
      clearTimeout(timer);
    } else await this.done;
  }
}

const cut = (line: string) => (line.length > MAX_STDERR_LINE ? `${line.slice(0, MAX_STDERR_LINE)}… (${line.length} characters)` : line);
