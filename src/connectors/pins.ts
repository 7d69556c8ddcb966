/**
 * Pins of MCP connector operations (`connector_pins`): the upstream tool's input schema and
 * description as they were at first load, or when an admin last accepted a change. A server
 * cannot swap a tool under an authority that was written for another: an operation whose tool no
 * longer matches its pin is suspended until an admin accepts (`connector.accepted`).
 */
import { createHash } from 'node:crypto';
import type { Sql, SqlTx } from '../db/sql';
import { canonicalize } from '../journal/jcs';
import type { AppendInput } from '../journal/types';

/** The journal's side of pinning: entries committed with the pin they describe. */
export interface PinJournal {
  appendWithin(tx: SqlTx, inputs: readonly AppendInput[]): Promise<unknown>;
}

/** What a tool looks like, reduced to what is pinned. */
export interface ToolShape {
  schemaSha256: string;
  descriptionSha256: string;
  inputSchema: Record<string, unknown>;
  description: string;
}

/**
 * A tool as last seen when it differed from its pin (`tool`: the tool the operation names now,
 * which the connector file may have changed); `missing`: the server no longer lists it.
 */
export type SeenChange = (ToolShape & { tool?: string; seenAt: string }) | { missing: true; seenAt: string };

export interface Pin extends ToolShape {
  connector: string;
  action: string;
  tool: string;
  pinnedAt: string;
  pinnedBy: string;
  changed: SeenChange | null;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The pinned shape of a tool: SHA-256 of its input schema in JCS (RFC 8785) and of its description. */
export function toolShape(tool: { inputSchema?: unknown; description?: string | undefined }): ToolShape {
  const inputSchema = (tool.inputSchema && typeof tool.inputSchema === 'object' ? tool.inputSchema : {}) as Record<string, unknown>;
  const description = tool.description ?? '';
  return { schemaSha256: sha256(canonicalize(inputSchema)), descriptionSha256: sha256(description), inputSchema, description };
}

export const sameShape = (a: Pick<ToolShape, 'schemaSha256' | 'descriptionSha256'>, b: Pick<ToolShape, 'schemaSha256' | 'descriptionSha256'>) =>
  a.schemaSha256 === b.schemaSha256 && a.descriptionSha256 === b.descriptionSha256;

const hashes = (s: Pick<ToolShape, 'schemaSha256' | 'descriptionSha256'>) => ({ schemaSha256: s.schemaSha256, descriptionSha256: s.descriptionSha256 });

interface PinRow {
  connector: string;
  action: string;
  tool: string;
  schema_sha256: string;
  description_sha256: string;
  input_schema: Record<string, unknown>;
  description: string;
  pinned_at: Date | string;
  pinned_by: string;
  changed: SeenChange | null;
}

const fromRow = (r: PinRow): Pin => ({
  connector: r.connector,
  action: r.action,
  tool: r.tool,
  schemaSha256: r.schema_sha256,
  descriptionSha256: r.description_sha256,
  inputSchema: r.input_schema,
  description: r.description,
  pinnedAt: new Date(r.pinned_at).toISOString(),
  pinnedBy: r.pinned_by,
  changed: r.changed,
});

const COLUMNS = 'connector, action, tool, schema_sha256, description_sha256, input_schema, description, pinned_at, pinned_by, changed';

/** The pins of a connector, by action. */
export async function readPins(sql: Pick<Sql, 'query'>, connector: string): Promise<Map<string, Pin>> {
  const rows = await sql.query<PinRow>(`SELECT ${COLUMNS} FROM connector_pins WHERE connector = $1`, [connector]);
  return new Map(rows.map((r) => [r.action, fromRow(r)]));
}

/** Connector ids that have pins at all (for the CLI: an id with none is no MCP connector seen here). */
export async function pinnedConnectors(sql: Pick<Sql, 'query'>): Promise<string[]> {
  const rows = await sql.query<{ connector: string }>('SELECT DISTINCT connector FROM connector_pins ORDER BY connector');
  return rows.map((r) => r.connector);
}

/**
 * What the upstream tool looks like now, compared with its pin: pinned now (first load, journaled
 * `connector.pinned`), matching, or changed (recorded and journaled `connector.changed` once per
 * distinct change, by whichever process saw it first). Returns the pin as it stands.
 */
export async function checkPin(
  sql: Sql,
  journal: PinJournal | undefined,
  key: { connector: string; action: string; tool: string },
  now: ToolShape | null,
): Promise<Pin | null> {
  return sql.transaction(async (tx) => {
    // One writer per pin at a time: two processes loading the same connector agree on one pin.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`connector_pins:${key.connector}:${key.action}`]);
    const rows = await tx.query<PinRow>(`SELECT ${COLUMNS} FROM connector_pins WHERE connector = $1 AND action = $2`, [key.connector, key.action]);
    const pin = rows[0] ? fromRow(rows[0]) : undefined;
    const subject = `connector:${key.connector}`;
    if (!pin) {
      if (!now) return null; // nothing to pin: the tool is not there (the caller says so)
      const inserted = await tx.query<PinRow>(
        `INSERT INTO connector_pins (connector, action, tool, schema_sha256, description_sha256, input_schema, description, pinned_by)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, 'system') RETURNING ${COLUMNS}`,
        [key.connector, key.action, key.tool, now.schemaSha256, now.descriptionSha256, JSON.stringify(now.inputSchema), now.description],
      );
      await journal?.appendWithin(tx, [
        { kind: 'connector.pinned', actor: 'system', subject, data: { action: key.action, tool: key.tool, ...hashes(now) }, policyVersion: null },
      ]);
      return fromRow(inserted[0]!);
    }
    const matches = now !== null && pin.tool === key.tool && sameShape(pin, now);
    if (matches) {
      // Back to what was pinned (a change that was undone): nothing is suspended any more.
      if (pin.changed) await tx.query('UPDATE connector_pins SET changed = NULL WHERE connector = $1 AND action = $2', [key.connector, key.action]);
      return { ...pin, changed: null };
    }
    const seenAt = new Date().toISOString();
    const seen: SeenChange = now ? { ...now, tool: key.tool, seenAt } : { missing: true, seenAt };
    const prior = pin.changed;
    const already =
      prior !== null &&
      ('missing' in prior
        ? 'missing' in seen
        : !('missing' in seen) && sameShape(prior, seen) && (prior.tool ?? pin.tool) === seen.tool);
    if (already) return pin;
    await tx.query('UPDATE connector_pins SET changed = $3::jsonb WHERE connector = $1 AND action = $2', [key.connector, key.action, JSON.stringify(seen)]);
    await journal?.appendWithin(tx, [
      {
        kind: 'connector.changed',
        actor: 'system',
        subject,
        data: { action: key.action, tool: key.tool, old: hashes(pin), new: 'missing' in seen ? null : hashes(seen) },
        policyVersion: null,
      },
    ]);
    return { ...pin, changed: seen };
  });
}

/** What an accept did, per operation. */
export interface Accepted {
  action: string;
  tool: string;
  old: { schemaSha256: string; descriptionSha256: string };
  new: { schemaSha256: string; descriptionSha256: string };
}

/**
 * An admin accepts the upstream tools of a connector as last seen: each changed pin takes the
 * new shape (journaled `connector.accepted`). A tool that vanished cannot be accepted (there is
 * nothing to pin): it stays suspended, and is listed in `missing`.
 */
export async function acceptChanges(
  sql: Sql,
  journal: PinJournal,
  connector: string,
  by: string,
): Promise<{ accepted: Accepted[]; missing: string[] }> {
  return sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`connector_pins:${connector}:accept`]);
    const rows = await tx.query<PinRow>(`SELECT ${COLUMNS} FROM connector_pins WHERE connector = $1 AND changed IS NOT NULL ORDER BY action FOR UPDATE`, [connector]);
    const accepted: Accepted[] = [];
    const missing: string[] = [];
    const entries: AppendInput[] = [];
    for (const r of rows) {
      const pin = fromRow(r);
      const seen = pin.changed!;
      if ('missing' in seen) {
        missing.push(pin.action);
        continue;
      }
      const tool = seen.tool ?? pin.tool;
      await tx.query(
        `UPDATE connector_pins SET tool = $8, schema_sha256 = $3, description_sha256 = $4, input_schema = $5::jsonb, description = $6, pinned_at = now(), pinned_by = $7, changed = NULL
         WHERE connector = $1 AND action = $2`,
        [connector, pin.action, seen.schemaSha256, seen.descriptionSha256, JSON.stringify(seen.inputSchema), seen.description, by, tool],
      );
      const a: Accepted = { action: pin.action, tool, old: hashes(pin), new: hashes(seen) };
      accepted.push(a);
      entries.push({ kind: 'connector.accepted', actor: by, subject: `connector:${connector}`, data: { ...a }, policyVersion: null });
    }
    if (entries.length) await journal.appendWithin(tx, entries);
    return { accepted, missing };
  });
}
