/**
 * Who the MCP client is, for every protocol revision. A 2026-07-28 request carries its client's
 * name, version and revision in its `_meta` envelope. A 2025-era client says them once, in
 * `initialize`, and the SDK's stateless serving keeps nothing between requests; so Regent answers
 * `initialize` with an `Mcp-Session-Id` that carries them, signed with a secret derived from the
 * journal key (every process of one deployment reads every other's), bound to the twin it was
 * issued to, and reads it back on every later request. Nothing is stored: any process can serve
 * any request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export interface McpClient {
  name: string;
  version: string;
  /** The protocol revision the request speaks. */
  protocol: string;
}

const Claims = z.strictObject({
  v: z.literal(1),
  twin: z.string().min(1).max(200),
  name: z.string().max(200),
  version: z.string().max(200),
  protocol: z.string().max(40),
  iat: z.number().int(),
});

const SESSION = /^rms1\.([A-Za-z0-9_-]{1,1200})\.([A-Za-z0-9_-]{43})$/;

/** Client names and versions as shown and journaled: printable, bounded. */
export function clean(text: unknown, max = 100): string {
  if (typeof text !== 'string') return 'unknown';
  const t = text.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, max);
  return t.length > 0 ? t : 'unknown';
}

export function createSessionCodec(secret: Buffer) {
  const mac = (payload: string) => createHmac('sha256', secret).update(payload).digest('base64url');
  return {
    /** The session id issued to a twin's client at `initialize`. */
    issue(twin: string, client: McpClient, now = Date.now()): string {
      const payload = Buffer.from(
        JSON.stringify({ v: 1, twin, name: clean(client.name), version: clean(client.version, 60), protocol: clean(client.protocol, 40), iat: Math.floor(now / 1000) }),
      ).toString('base64url');
      return `rms1.${payload}.${mac(payload)}`;
    },
    /**
     * The client a session id names, when it is one Regent issued to this twin; undefined for
     * anything else (forged, altered, another twin's, or not ours at all).
     */
    read(sessionId: string | undefined, twin: string): McpClient | undefined {
      if (!sessionId) return undefined;
      const m = SESSION.exec(sessionId);
      if (!m) return undefined;
      const [, payload, sig] = m as unknown as [string, string, string];
      const want = Buffer.from(mac(payload));
      const got = Buffer.from(sig);
      if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
      let claims: z.infer<typeof Claims>;
      try {
        const parsed = Claims.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
        if (!parsed.success) return undefined;
        claims = parsed.data;
      } catch {
        return undefined;
      }
      if (claims.twin !== twin) return undefined;
      return { name: claims.name, version: claims.version, protocol: claims.protocol };
    },
  };
}

export type SessionCodec = ReturnType<typeof createSessionCodec>;
