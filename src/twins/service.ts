import { isUniqueViolation } from '../db/errors';
import type { PrismaClient } from '../db/prisma';
import type { Sql, SqlTx } from '../db/sql';
import { ConflictError, InputError, NotFoundError, UnavailableError } from '../errors/errors';
import { parseInput } from '../errors/input';
import type { JournalService } from '../journal/service';
import type { Logger } from '../log/logger';
import { checkActor, type PeopleService } from '../people/service';
import { isId, type IssuedKey, type Principal } from '../people/types';
import { can } from '../policy/roles';
import type { PolicyService } from '../policy/service';
import type { Mode } from '../policy/types';
import { createTwinStore } from './store';
import { ModeSchema, NewTwinSchema, type KillSwitchState, type NewTwin, type Twin } from './types';

export interface TwinServiceOptions {
  sql: Sql;
  /** For the management listings (Prisma Client); everything else goes through sql. */
  prisma: PrismaClient;
  journal: Pick<JournalService, 'append'>;
  people: Pick<PeopleService, 'findUser' | 'issueKeyIn'>;
  /** Absent where no policy is loaded (some CLI commands): creating a twin is then refused. */
  policy: Pick<PolicyService, 'bundle'> | undefined;
  log: Logger;
}

/** Who may see a twin: its owner (an executive) and admins, as roles.ts says. */
function visible(principal: Principal, twin: Twin): boolean {
  if (principal.kind === 'twin') return principal.id === twin.id;
  return can({ id: principal.id, roles: principal.appRoles }, 'twin.read', { owner: twin.owner });
}

/**
 * Twins: who they work for, the authority they act under, their mode, and the kill switches
 * (global and per twin) that the executor consults before every execution.
 */
export function createTwinService(opts: TwinServiceOptions) {
  const { journal, people, policy } = opts;
  const store = createTwinStore(opts.sql, opts.prisma);
  /** Told when what a twin may do changed: a mode, a kill switch. */
  const listeners = new Set<(change: { twin: string | null; what: 'mode' | 'kill_switch' }) => void>();
  const changed = (change: { twin: string | null; what: 'mode' | 'kill_switch' }) => {
    for (const fn of listeners) {
      try {
        fn(change);
      } catch (err) {
        opts.log.warn('a twin change listener failed', { error: err });
      }
    }
  };

  async function get(id: string): Promise<Twin> {
    const twin = isId(id) ? await store.get(id) : undefined;
    if (!twin) throw new NotFoundError(`no twin ${id}`);
    return twin;
  }

  /** The owner must be an active executive and the very person whose authority the twin uses. */
  async function checkCreation(t: { id: string; owner: string; authority: string }): Promise<void> {
    const user = await people.findUser(t.owner.slice(5));
    if (!user) throw new InputError(`owner: there is no user ${t.owner}`, { field: 'owner' });
    if (user.disabledAt) throw new InputError(`owner: ${t.owner} is disabled`, { field: 'owner' });
    if (!user.roles.includes('executive'))
      throw new InputError(`owner: ${t.owner} is not an executive; a twin works for an executive`, { field: 'owner' });
    if (!policy) throw new UnavailableError('no policy bundle is loaded here; twins are created through the server');
    const bundle = policy.bundle();
    const authority = bundle.authorities.get(t.authority);
    if (!authority)
      throw new InputError(`authority: no authority "${t.authority}" in the policy bundle in force (${bundle.version})`, {
        field: 'authority',
      });
    if (authority.delegate !== `twin:${t.id}`) {
      throw new InputError(`authority: "${t.authority}" delegates to ${authority.delegate}, not to twin:${t.id}`, { field: 'authority' });
    }
    // Whoever owns the twin sets its mode and holds its key, so only the person whose authority
    // is delegated (at the root of the parent chain) may own it; anyone else would borrow it.
    const root = authority.ancestors.at(-1) ?? authority;
    if (root.delegator !== t.owner) {
      throw new InputError(
        `owner: "${t.authority}" delegates the authority of ${root.delegator}, so the twin must be owned by ${root.delegator}, not ${t.owner}`,
        {
          field: 'owner',
        },
      );
    }
  }

  return {
    /** Registers a twin and makes its own API key, returned once. */
    async create(input: NewTwin, actor: string): Promise<{ twin: Twin } & IssuedKey> {
      checkActor(actor);
      const t = parseInput(NewTwinSchema, input, 'twin');
      await checkCreation(t);
      let created: { twin: Twin } & IssuedKey;
      try {
        created = await store.transaction(async (tx) => {
          const twin = await store.insert(tx, t);
          const { keyId, apiKey } = await people.issueKeyIn(tx, `twin:${t.id}`, 'twin key');
          return { twin, keyId, apiKey };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new ConflictError(`a twin with id "${t.id}" already exists`);
        throw err;
      }
      const { twin } = created;
      await journal.append({
        kind: 'twin.created',
        actor,
        subject: `twin:${twin.id}`,
        data: { owner: twin.owner, authority: twin.authority, mode: twin.mode, keyId: created.keyId },
      });
      return created;
    },

    get,

    /** The twins `principal` may see. */
    async list(visibleTo: Principal): Promise<Twin[]> {
      return (await store.list()).filter((t) => visible(visibleTo, t));
    },

    /** The twins of one owner (`user:<id>`), e.g. to show an executive their twins' proposals. */
    ownedBy: (owner: string): Promise<Twin[]> => store.list(owner),

    /** Calls `fn` when a twin's mode or a kill switch changes in this process; returns the way to stop. */
    onChange(fn: (change: { twin: string | null; what: 'mode' | 'kill_switch' }) => void): () => void {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    /** Changes a twin's mode (who may is the caller's check); journaled with from and to. */
    async setMode(id: string, mode: Mode, actor: string): Promise<Twin> {
      checkActor(actor);
      const to = parseInput(ModeSchema, mode, 'mode');
      const r = isId(id) ? await store.update(id, 'mode', to) : undefined;
      if (!r) throw new NotFoundError(`no twin ${id}`);
      if (r.before.mode !== to) {
        await journal.append({ kind: 'twin.mode_changed', actor, subject: `twin:${id}`, data: { from: r.before.mode, to } });
        changed({ twin: id, what: 'mode' });
      }
      return r.after;
    },

    /**
     * Engages or releases the global kill switch, or one twin's. Every press is journaled, also
     * one that changes nothing: in an emergency, who pressed what matters.
     */
    async setKillSwitch(
      s: { engaged: boolean; twin?: string | undefined },
      actor: string,
    ): Promise<{ engaged: boolean; twin?: string; previous: boolean }> {
      checkActor(actor);
      let previous: boolean;
      if (s.twin !== undefined) {
        const r = isId(s.twin) ? await store.update(s.twin, 'killed', s.engaged) : undefined;
        if (!r) throw new NotFoundError(`no twin ${s.twin}`);
        previous = r.before.killed;
      } else {
        previous = await store.setGlobalSwitch(s.engaged, actor);
      }
      await journal.append({
        kind: 'kill_switch.changed',
        actor,
        subject: s.twin !== undefined ? `twin:${s.twin}` : 'switch:kill',
        data: { scope: s.twin !== undefined ? 'twin' : 'global', engaged: s.engaged, previous, changed: previous !== s.engaged },
      });
      opts.log.warn(s.engaged ? 'kill switch engaged' : 'kill switch released', { twin: s.twin ?? null, actor });
      if (previous !== s.engaged) changed({ twin: s.twin ?? null, what: 'kill_switch' });
      return { engaged: s.engaged, ...(s.twin !== undefined ? { twin: s.twin } : {}), previous };
    },

    async killSwitch(visibleTo: Principal): Promise<KillSwitchState> {
      const [global, twins] = await Promise.all([store.globalSwitch(), store.list()]);
      return {
        engaged: global?.engaged ?? true,
        updatedBy: global?.updatedBy ?? 'system',
        updatedAt: global?.updatedAt ?? new Date(0).toISOString(),
        twins: twins.filter((t) => t.killed && visible(visibleTo, t)).map((t) => t.id),
      };
    },

    /** For the executor, right before acting: reads the database every time (one cheap query). */
    isHalted: async (twinId: string): Promise<boolean> => !isId(twinId) || store.isHalted(twinId),

    /** For a new action request: the twin, and whether a kill switch halts it, read together. */
    getForAction: async (twinId: string) => (isId(twinId) ? store.getForAction(twinId) : undefined),

    /** getForAction for several twins in one read, inside the caller's transaction if given. */
    getManyForAction: (twinIds: readonly string[], tx?: SqlTx) => store.getManyForAction(twinIds.filter(isId), tx),
  };
}

export type TwinService = ReturnType<typeof createTwinService>;
