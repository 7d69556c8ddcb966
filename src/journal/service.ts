import { InputError, UnavailableError } from '../errors/errors';
import type { Logger } from '../log/logger';
import { fromHex32, sealEntriesHex, toHex, type JournalEntry, type JournalEntryBody } from './hash';
import { canonicalize } from './jcs';
import { CompactRange, consistencyProof, frontierRoot, inclusionProof, rootOf } from './merkle';
import { SigningKeyError, type Signer } from './keys';
import { formatCheckpoint, openNote, parseVerifierKey } from './note';
import { detached, inTransaction, type SqlTx } from '../db/sql';
import type { JournalStore, StoredHead } from './store';
import {
  ACTOR_PATTERN,
  APPEND_FIELDS,
  AppendInputSchema,
  dataProblem,
  isJournalKind,
  JournalContractError,
  POLICY_VERSION_PATTERN,
  SUBJECT_PATTERN,
  type AppendInput,
  type JournalKind,
} from './contract';
import type { Checkpoint, JournalHead, JournalQuery } from './types';

/** Largest canonical `data` accepted in one entry. */
const MAX_DATA_BYTES = 64 * 1024;
/** Entries written in one group-commit transaction at most. */
const MAX_BATCH = 2000;

/** PostgreSQL's jsonb refuses NUL and lone surrogates in strings; find them before storage does. */
function badString(v: unknown): 'nul' | 'surrogate' | null {
  if (typeof v === 'string') return v.includes('\u0000') ? 'nul' : v.isWellFormed() ? null : 'surrogate';
  if (Array.isArray(v)) {
    for (const x of v) {
      const b = badString(x);
      if (b) return b;
    }
    return null;
  }
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const b = badString(k) ?? badString(x);
      if (b) return b;
    }
  }
  return null;
}

const APPEND_FIELD_SET: ReadonlySet<string> = new Set(APPEND_FIELDS);

interface Prepared {
  base: StoredHead;
  entries: JournalEntry[];
  next: StoredHead;
}

interface Pending {
  bodies: Omit<JournalEntryBody, 'seq' | 'ts'>[];
  resolve(entries: JournalEntry[]): void;
  reject(err: Error): void;
}

export interface JournalOptions {
  store: JournalStore;
  signer: Signer;
  log: Logger;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  /**
   * Checks every appended entry's data against its kind's schema (contract.ts ENTRY_DATA) and
   * throws JournalContractError when it does not fit: a bug in the appending code. Default: on
   * when NODE_ENV is "test" (jest sets it), off otherwise, since appends are a hot path.
   */
  strict?: boolean;
}

export interface InclusionProof {
  seq: number;
  size: number;
  leaf: string;
  root: string;
  proof: string[];
}

/**
 * The journal: validated appends, group-committed in seq order, acknowledged only once their
 * transaction has committed; signed checkpoints every `checkpointEvery` entries or
 * `checkpointIntervalMs` of activity; reads and proofs.
 */
export type AppendMode = 'append' | 'batch' | 'transaction';
export type AppendObserver = (mode: AppendMode, seconds: number) => void;

export function createJournalService(opts: JournalOptions) {
  const { store, signer, log } = opts;
  const strict = opts.strict ?? process.env.NODE_ENV === 'test';
  let queue: Pending[] = [];
  let flushing: Promise<void> | undefined;
  let lastTs = 0;
  let lastCheckpointSize = -1;
  let knownHead: StoredHead | undefined;
  /** Told how long each acknowledged append took (metrics). */
  const appendObservers = new Set<AppendObserver>();
  async function timed<T>(mode: AppendMode, run: () => Promise<T>): Promise<T> {
    if (appendObservers.size === 0) return run();
    const started = process.hrtime.bigint();
    const result = await run();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    for (const o of appendObservers) o(mode, seconds);
    return result;
  }
  let timer: NodeJS.Timeout | undefined;
  let checkpointing: Promise<Checkpoint> | undefined;
  let stopped = false;

  /** The common case, checked without zod; anything unusual goes through zod for its message. */
  function fastParse(input: unknown): Pick<JournalEntryBody, 'kind' | 'actor' | 'subject' | 'data' | 'policyVersion'> | undefined {
    if (!input || typeof input !== 'object') return undefined;
    const o = input as Record<string, unknown>;
    for (const k in o) if (!APPEND_FIELD_SET.has(k)) return undefined;
    const { kind, actor } = o;
    const subject = o.subject ?? null;
    const policyVersion = o.policyVersion ?? null;
    const data = o.data === undefined ? {} : o.data;
    if (!isJournalKind(kind) || typeof actor !== 'string' || !ACTOR_PATTERN.test(actor)) return undefined;
    if (subject !== null && (typeof subject !== 'string' || !SUBJECT_PATTERN.test(subject))) return undefined;
    if (policyVersion !== null && (typeof policyVersion !== 'string' || !POLICY_VERSION_PATTERN.test(policyVersion))) return undefined;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
    return { kind, actor, subject, data, policyVersion };
  }

  function validate(input: AppendInput): Omit<JournalEntryBody, 'seq' | 'ts'> {
    let p = fastParse(input);
    if (!p) {
      const parsed = AppendInputSchema.safeParse(input);
      if (!parsed.success) {
        const i = parsed.error.issues[0]!;
        throw new InputError(`journal entry ${i.path.join('.') || 'input'}: ${i.message}`);
      }
      p = parsed.data;
    }
    // What is hashed must be exactly what storage gives back later: the canonical text, parsed.
    let dataJcs: string;
    try {
      dataJcs = canonicalize(p.data);
    } catch (err) {
      throw new InputError(`journal entry data is not representable as JSON: ${(err as Error).message}`);
    }
    const bad = badString(p.data);
    if (bad === 'nul') throw new InputError('journal entry data: strings may not contain NUL (\\u0000)');
    if (bad === 'surrogate') throw new InputError('journal entry data: strings must be well-formed Unicode (no lone surrogates)');
    if (dataJcs.length * 3 > MAX_DATA_BYTES && Buffer.byteLength(dataJcs) > MAX_DATA_BYTES)
      throw new InputError(`journal entry data is larger than ${MAX_DATA_BYTES} bytes`);
    const data: unknown = JSON.parse(dataJcs);
    // Checked as stored (undefined fields dropped), which is what auditors will read.
    if (strict) {
      const problem = dataProblem(p.kind as JournalKind, data);
      if (problem) throw new JournalContractError(`journal entry of kind ${p.kind}: ${problem} (its schema: ENTRY_DATA['${p.kind}'] in src/journal/contract.ts)`);
    }
    return { kind: p.kind, actor: p.actor, subject: p.subject, data, dataJcs, policyVersion: p.policyVersion };
  }

  function nextTs(): string {
    // Non-decreasing within a process even if the wall clock steps back.
    lastTs = Math.max(Date.now(), lastTs);
    return new Date(lastTs).toISOString();
  }

  /** Hashes a batch as if it follows `base`: seq, ts, leaf, chain and the new head. */
  function seal(batch: Pending[], base: StoredHead): Prepared {
    const ts = nextTs();
    const bodies: JournalEntryBody[] = [];
    let seq = base.size;
    for (const p of batch) for (const b of p.bodies) bodies.push({ ...b, seq: ++seq, ts });
    const sealed = sealEntriesHex(base.chain, bodies);
    const range = CompactRange.fromHex(base.size, base.frontier);
    for (const e of sealed.entries) range.appendHex(e.leaf);
    return { base, entries: sealed.entries, next: { size: range.size, chain: sealed.lastChain, frontier: range.frontierHex() } };
  }

  /**
   * Writes a batch in `tx`, sealed against the head this process expects (`prepared`, or the
   * last head it saw): one round trip when no other writer came in between. If one did, the
   * database answers with the real head (locked now) and the batch is sealed again against it.
   */
  async function sealAndAppend(tx: SqlTx, batch: Pending[], prepared: Prepared | undefined): Promise<Prepared> {
    let p = prepared ?? seal(batch, knownHead ?? (await store.head(tx)));
    // The second call holds the head's lock, so it cannot miss; a third would be a bug.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const actual = await store.appendAt(tx, p.base, p.entries, p.next);
      if (!actual) return p;
      p = seal(batch, actual);
    }
    throw new Error('the journal head kept moving under a locked append');
  }

  /**
   * One transaction for the batch. `prepared` was hashed ahead of time against the head this
   * process expected; if another process appended meanwhile, it is hashed again (sealAndAppend).
   */
  async function writeBatch(batch: Pending[], prepared: Prepared | undefined): Promise<StoredHead | undefined> {
    let done: Prepared;
    try {
      done = await store.transaction((tx) => sealAndAppend(tx, batch, prepared));
    } catch (err) {
      log.error('journal append failed; nothing was written', { error: err, entries: batch.length });
      const e = new UnavailableError(`journal append failed: ${(err as Error).message}`);
      for (const p of batch) p.reject(e);
      return undefined;
    }
    let i = 0;
    for (const p of batch) {
      p.resolve(done.entries.slice(i, i + p.bodies.length));
      i += p.bodies.length;
    }
    knownHead = done.next;
    if (lastCheckpointSize >= 0 && done.next.size - lastCheckpointSize >= opts.checkpointEvery) {
      void checkpoint().catch((err) => log.error('checkpoint failed', { error: err }));
    }
    return done.next;
  }

  function takeBatch(): Pending[] {
    // Whole requests (a multi-entry append is never split), up to MAX_BATCH entries.
    let n = 0;
    let count = 0;
    while (n < queue.length && (n === 0 || count + queue[n]!.bodies.length <= MAX_BATCH)) count += queue[n++]!.bodies.length;
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    return batch;
  }

  /**
   * The single writer of this process. While one batch's transaction is at the database, the
   * next batch is hashed against the head that transaction will leave, so hashing and storage
   * overlap; batches still commit one after the other, in order.
   */
  async function pump(): Promise<void> {
    let inflight: Promise<StoredHead | undefined> | undefined;
    let expected: StoredHead | undefined = knownHead;
    // Appends that arrive while the last transaction finishes are taken by the next round.
    do {
      while (queue.length) {
        const batch = takeBatch();
        let prepared: Prepared | undefined;
        try {
          prepared = expected ? seal(batch, expected) : undefined;
        } catch {
          prepared = undefined; // hashed again, under the lock, where a failure rejects the batch
        }
        if (inflight) await inflight;
        inflight = writeBatch(batch, prepared);
        expected = prepared?.next;
        if (!expected) {
          await inflight;
          inflight = undefined;
          expected = knownHead;
        }
      }
      if (inflight) await inflight;
      inflight = undefined;
      expected = knownHead;
    } while (queue.length);
    flushing = undefined;
  }

  function enqueue(bodies: Pending['bodies']): Promise<JournalEntry[]> {
    if (stopped) return Promise.reject(new UnavailableError('the journal is shut down'));
    // Waiting for the writer from inside a transaction would wait for that very transaction.
    if (inTransaction()) return Promise.reject(new Error('journal.append inside a transaction: use appendWithin(tx, …)'));
    return new Promise((resolve, reject) => {
      queue.push({ bodies, resolve, reject });
      flushing ??= detached(() => pump());
    });
  }

  async function checkpoint(): Promise<Checkpoint> {
    // One at a time per process; other processes are reconciled by the table's primary key.
    if (checkpointing) await checkpointing.catch(() => undefined);
    checkpointing = (async () => {
      const head = await store.head();
      const existing = await store.checkpointAt(head.size);
      if (existing) return existing;
      const root = frontierRoot(head.frontier.map(fromHex32));
      const body = formatCheckpoint({ origin: signer.origin, size: head.size, root });
      const stored = await store.insertCheckpoint({ size: head.size, root: toHex(root), note: signer.sign(body) });
      log.debug('journal checkpoint', { size: stored.size, root: stored.root });
      return stored;
    })();
    try {
      const c = await checkpointing;
      lastCheckpointSize = Math.max(lastCheckpointSize, c.size);
      return c;
    } finally {
      checkpointing = undefined;
    }
  }

  return {
    origin: signer.origin,
    vkey: signer.vkey,

    /** Loads the last checkpoint and starts the periodic checkpoint timer. */
    async start(): Promise<void> {
      const [head, last] = await Promise.all([store.head(), store.latestCheckpoint()]);
      // Every process appending to one journal must sign with the same key, or auditors holding
      // its verifier key could not check half of the checkpoints: refuse to start with another.
      if (last && !openNote(last.note, parseVerifierKey(signer.vkey)).verified) {
        throw new SigningKeyError(
          `this process's journal signing key (${signer.vkey.split('+').slice(0, 2).join('+')}) did not sign the journal's latest checkpoint (size ${last.size}); ` +
            'every process on one database must use the same key: set REGENT_SIGNING_KEY to the journal key on each (see the README, deployment)',
        );
      }
      knownHead = head;
      lastCheckpointSize = last?.size ?? 0;
      timer = setInterval(() => {
        if ((knownHead?.size ?? 0) > lastCheckpointSize) void checkpoint().catch((err) => log.error('checkpoint failed', { error: err }));
      }, opts.checkpointIntervalMs);
      timer.unref();
    },

    /** Appends one entry; resolves once it is committed. */
    async append<K extends JournalKind>(input: AppendInput<K>): Promise<JournalEntry> {
      const [entry] = await timed('append', () => enqueue([validate(input)]));
      return entry!;
    },

    /** Appends several entries atomically and contiguously. */
    async appendMany<K extends JournalKind>(inputs: readonly AppendInput<K>[]): Promise<JournalEntry[]> {
      if (inputs.length === 0) return [];
      if (inputs.length > MAX_BATCH) throw new InputError(`at most ${MAX_BATCH} entries can be appended at once`);
      return timed('batch', () => enqueue(inputs.map(validate)));
    },

    /**
     * Appends inside the caller's transaction, so a state change and its journal entries commit
     * together or not at all. Bypasses group commit: the head row stays locked until the caller
     * commits, which serializes such transactions with every other append.
     */
    async appendWithin<K extends JournalKind>(tx: SqlTx, inputs: readonly AppendInput<K>[]): Promise<JournalEntry[]> {
      if (inputs.length === 0) return [];
      return timed('transaction', async () => {
        const p = await sealAndAppend(tx, [{ bodies: inputs.map(validate), resolve: () => undefined, reject: () => undefined }], undefined);
        // A guess for the next append until the caller commits; a wrong guess (the caller rolled
        // back) costs the next append one more round trip, never a wrong entry.
        knownHead = p.next;
        return p.entries;
      });
    },

    /**
     * Registers `observe` to be told each append's duration (append: acknowledged after commit;
     * batch: appendMany; transaction: appendWithin, inside the caller's transaction). Returns a
     * function that unregisters it.
     */
    onAppended(observe: AppendObserver): () => void {
      appendObservers.add(observe);
      return () => appendObservers.delete(observe);
    },

    checkpoint,

    async head(): Promise<JournalHead> {
      const [head, last] = await Promise.all([store.head(), store.latestCheckpoint()]);
      return { size: head.size, chain: head.chain, root: toHex(frontierRoot(head.frontier.map(fromHex32))), lastCheckpoint: last ?? null };
    },

    list: (q: JournalQuery) => store.list(q),

    /** The newest entry of one of `kinds`. */
    latest: (kinds: readonly JournalKind[]) => store.latest(kinds),

    checkpoints: (atMost: number) => store.checkpoints(atMost),

    async inclusionProof(seq: number, size?: number): Promise<InclusionProof> {
      const head = await store.head();
      const n = size ?? head.size;
      if (!Number.isInteger(seq) || seq < 1 || seq > n) throw new InputError(`seq must be between 1 and ${n}`);
      if (n > head.size) throw new InputError(`size ${n} is beyond the journal's size ${head.size}`);
      const leaves = await store.leaves(1, n);
      return {
        seq,
        size: n,
        leaf: toHex(leaves[seq - 1]!),
        root: toHex(rootOf(leaves, n)),
        proof: inclusionProof(leaves, seq - 1, n).map(toHex),
      };
    },

    async consistencyProof(m: number, n?: number): Promise<{ from: number; to: number; proof: string[] }> {
      const head = await store.head();
      const to = n ?? head.size;
      if (!Number.isInteger(m) || m < 1 || m > to || to > head.size) throw new InputError(`need 1 <= from <= to <= ${head.size}`);
      const leaves = await store.leaves(1, to);
      return { from: m, to, proof: consistencyProof(leaves, m, to).map(toHex) };
    },

    /** Waits for queued appends, writes a final checkpoint, and refuses new appends. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      while (flushing) await flushing;
      if ((knownHead?.size ?? 0) > lastCheckpointSize)
        await checkpoint().catch((err) => log.error('final checkpoint failed', { error: err }));
    },
  };
}

export type JournalService = ReturnType<typeof createJournalService>;
