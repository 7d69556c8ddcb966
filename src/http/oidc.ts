/**
 * OIDC/JWT bearer tokens, when configured: a token from the organisation's identity provider is
 * verified with `jose` against the provider's JWKS (signature, issuer, audience, expiry, not
 * before), then mapped to a Regent user. The user must exist in Regent and be active, so
 * ownership of twins, approvals and the journal always name real, disable-able people; the roles
 * are Regent's record of them, or the token's when REGENT_OIDC_ROLES_CLAIM is set.
 */
import type { OidcConfig } from '../config/config';
import { UnavailableError } from '../errors/errors';
import type { Logger } from '../log/logger';
import type { TwinService } from '../twins/service';
import type { PeopleService } from '../people/service';
import { appRoles, isId, type Principal } from '../people/types';

type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' } });

/** Asymmetric algorithms only: never "none", never a shared-secret HMAC. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** A compact JWS: three base64url parts. Regent API keys (rgt_…) never look like this. */
export const looksLikeJwt = (token: string) => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);

export type OidcResult =
  | { ok: true; principal: Principal; subject: string }
  | { ok: false; reason: string; detail: string; subject?: string };

export interface OidcVerifier {
  verify(token: string): Promise<OidcResult>;
}

const ROLE = /^[a-z][a-z0-9-]{0,63}$/;

function rolesFrom(claim: unknown): string[] | undefined {
  const list = typeof claim === 'string' ? claim.split(/[\s,]+/) : Array.isArray(claim) ? claim : undefined;
  if (!list) return undefined;
  return [...new Set(list.filter((r): r is string => typeof r === 'string').map((r) => r.trim().replace(/^role:/, '')).filter((r) => ROLE.test(r)))];
}

/** The value at a claim name; dotted names reach into objects (realm_access.roles). */
function claimAt(payload: Record<string, unknown>, name: string): unknown {
  if (name in payload) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function createOidcVerifier(
  config: OidcConfig,
  people: Pick<PeopleService, 'findUser'>,
  log: Logger,
  /** With twins, a token whose claim is `twin:<id>` (a machine token issued to an agent) names that twin. */
  twins?: Pick<TwinService, 'getForAction'>,
): OidcVerifier {
  let jose: Jose | undefined;
  let jwks: ReturnType<Jose['createRemoteJWKSet']> | undefined;

  async function keys() {
    // jose is an ES module; loaded on first use (CommonJS build).
    jose ??= await import('jose');
    jwks ??= jose.createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    return { jose, jwks };
  }

  /** The user or twin a token names; fail closed (503) when storage cannot say. */
  async function lookup<T>(what: 'user' | 'twin', find: () => Promise<T | undefined> | undefined): Promise<T | undefined> {
    try {
      return await find();
    } catch (err) {
      log.error(`could not look up the ${what} a token names`, { error: err });
      throw new UnavailableError(`cannot check the token’s ${what} right now (storage unavailable); try again`);
    }
  }

  return {
    async verify(token) {
      const { jose: j, jwks: set } = await keys();
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await j.jwtVerify(token, set, {
          issuer: config.issuer,
          audience: config.audience,
          algorithms: OIDC_ALGORITHMS,
          clockTolerance: 30,
        }));
      } catch (err) {
        const code = (err as { code?: string }).code;
        const e = err as { message?: string; claim?: string; payload?: { exp?: number } };
        switch (code) {
          case 'ERR_JWT_EXPIRED':
            return {
              ok: false,
              reason: 'token_expired',
              detail: `the token expired${e.payload?.exp ? ` at ${new Date(e.payload.exp * 1000).toISOString()}` : ''}; get a new one from your identity provider`,
            };
          case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
            return { ok: false, reason: 'claim_invalid', detail: `the token's ${e.claim ?? 'claims'} claim is not accepted here (${e.message})` };
          case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
            return { ok: false, reason: 'bad_signature', detail: 'the token’s signature does not verify with the identity provider’s keys' };
          case 'ERR_JWKS_NO_MATCHING_KEY':
            return { ok: false, reason: 'unknown_key', detail: 'the token is signed with a key the identity provider does not publish' };
          case 'ERR_JOSE_ALG_NOT_ALLOWED':
          case 'ERR_JOSE_NOT_SUPPORTED':
            return { ok: false, reason: 'alg_not_allowed', detail: `the token's signature algorithm is not accepted (allowed: ${OIDC_ALGORITHMS.join(', ')})` };
          case 'ERR_JWT_INVALID':
          case 'ERR_JWS_INVALID':
            return { ok: false, reason: 'malformed_jwt', detail: 'the bearer token is not a well-formed signed JWT' };
          default:
            // The identity provider's keys cannot be had (timeout, connection refused, not a JWKS):
            // fail closed, and say it is temporary.
            log.error('could not fetch the identity provider’s keys (JWKS)', { jwksUrl: config.jwksUrl, code, error: err });
            throw new UnavailableError(`cannot verify the token right now: the identity provider's keys at ${config.jwksUrl} could not be fetched; try again`);
        }
      }
      const sub = claimAt(payload, config.userClaim);
      const subject = typeof payload.sub === 'string' ? payload.sub : undefined;
      if (typeof sub !== 'string' || !sub) {
        return { ok: false, reason: 'no_user_claim', detail: `the token has no ${config.userClaim} claim naming a Regent user`, subject };
      }
      if (sub.startsWith('twin:') && twins) {
        const twinId = sub.slice(5);
        const twin = await lookup('twin', () => (isId(twinId) ? twins.getForAction(twinId) : undefined));
        if (!twin) return { ok: false, reason: 'unknown_twin', detail: `the token's ${config.userClaim} "${sub}" names no Regent twin`, subject };
        return { ok: true, subject: subject ?? sub, principal: { kind: 'twin', id: twinId, ref: `twin:${twinId}`, owner: twin.owner, keyId: 'oidc' } };
      }
      const id = sub.startsWith('user:') ? sub.slice(5) : sub;
      const user = await lookup('user', () => (isId(id) ? people.findUser(id) : undefined));
      if (!user) return { ok: false, reason: 'unknown_user', detail: `the token's ${config.userClaim} "${sub}" names no Regent user`, subject };
      if (user.disabledAt) return { ok: false, reason: 'disabled', detail: `user:${id} is disabled`, subject };
      let roles: string[] = user.roles;
      if (config.rolesClaim) {
        const fromToken = rolesFrom(claimAt(payload, config.rolesClaim));
        if (!fromToken) {
          return { ok: false, reason: 'no_roles_claim', detail: `the token has no ${config.rolesClaim} claim listing roles`, subject };
        }
        roles = fromToken;
      }
      return {
        ok: true,
        subject: subject ?? sub,
        principal: { kind: 'user', id, ref: `user:${id}`, roles, appRoles: appRoles(roles), keyId: 'oidc' },
      };
    },
  };
}
