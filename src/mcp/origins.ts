/**
 * Where Regent's MCP endpoint is reached, and the Host and Origin checks against DNS rebinding: a
 * web page that rebinds its own name to 127.0.0.1 must not reach a twin's tools through a
 * browser. Bound to loopback, the loopback names are accepted on any port; otherwise only
 * REGENT_PUBLIC_URL's host (with the loopback names still allowed for the machine itself). A
 * request naming another host, or carrying an Origin that is not one of these, gets 403.
 */
import type { Request, RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { sendProblem } from '../http/problem';

export interface Origins {
  /** `<scheme>://<host>[/<path>]` of this server as clients reach it (no trailing slash). */
  base(req: Request): string;
  /** The OIDC issuer(s) that issue tokens for this resource; empty without OIDC. */
  authorizationServers: string[];
  /** Host header values accepted (lowercase, without port) for loopback; exact host[:port] for the public URL. */
  accepts(host: string | undefined): boolean;
  acceptsOrigin(origin: string): boolean;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return LOOPBACK_NAMES.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h.endsWith('.localhost');
}

/** The hostname of a Host header value (`[::1]:3000` → `[::1]`, `localhost:80` → `localhost`). */
function hostnameOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

export function createOrigins(opts: { publicUrl: string | undefined; bindHost: string; oidcIssuer: string | undefined }): Origins {
  const pub = opts.publicUrl ? new URL(opts.publicUrl) : undefined;
  const pubBase = pub ? `${pub.origin}${pub.pathname.replace(/\/+$/, '')}` : undefined;
  return {
    base: (req) => pubBase ?? `${req.protocol}://${req.get('host') ?? `${opts.bindHost}`}`,
    authorizationServers: opts.oidcIssuer ? [opts.oidcIssuer] : [],
    accepts(host) {
      if (!host) return false;
      if (pub && host.toLowerCase() === pub.host.toLowerCase()) return true;
      return isLoopbackHost(hostnameOf(host));
    },
    acceptsOrigin(origin) {
      let u: URL;
      try {
        u = new URL(origin);
      } catch {
        return false;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
      if (pub && u.origin === pub.origin) return true;
      return isLoopbackHost(u.hostname);
    },
  };
}

/**
 * The RFC 9728 metadata URL the 401 challenge names (DESIGN.md: `<base>/.well-known/
 * oauth-protected-resource`); the path-inserted form `…/oauth-protected-resource/mcp` that
 * clients also try is served too.
 */
export const resourceMetadataUrl = (base: string): string => `${base}/.well-known/oauth-protected-resource`;

/** 403 for a Host that is not ours, or a present Origin that is not ours (no Origin: not a browser, fine). */
export function hostGuard(origins: Origins): RequestHandler {
  return (req, res, next) => {
    const host = req.get('host');
    if (!origins.accepts(host)) {
      sendProblem(res, 'forbidden', `host ${JSON.stringify(host ?? '')} is not this server's name (set REGENT_PUBLIC_URL to the URL clients use)`, randomUUID());
      return;
    }
    const origin = req.get('origin');
    if (origin !== undefined && !origins.acceptsOrigin(origin)) {
      sendProblem(res, 'forbidden', `origin ${JSON.stringify(origin)} may not call /mcp (only this server's own origin and loopback pages may)`, randomUUID());
      return;
    }
    next();
  };
}
