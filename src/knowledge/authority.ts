/**
 * What a twin may read: its authority's `knowledge`, intersected with every ancestor's (a child
 * only narrows, checked at load; intersected here too so a mistake can never widen). None when
 * no policy is in force, the twin's authority is missing, revoked or outside its valid window.
 */
import type { PolicyService } from '../policy/service';
import type { TwinService } from '../twins/service';
import type { KnowledgeClass } from './types';

export function twinKnowledgeOf(policy: Pick<PolicyService, 'bundle'> | undefined, twins: Pick<TwinService, 'get'>, now: () => number = Date.now) {
  return async (twinId: string): Promise<{ collections: string[]; classes: KnowledgeClass[] } | null> => {
    if (!policy) return null;
    const twin = await twins.get(twinId).catch(() => undefined);
    if (!twin) return null;
    let bundle;
    try {
      bundle = policy.bundle();
    } catch {
      return null;
    }
    const authority = bundle.authorities.get(twin.authority);
    if (!authority || authority.delegate !== `twin:${twinId}`) return null;
    const at = now();
    let collections: string[] | undefined;
    let classes: KnowledgeClass[] | undefined;
    for (const a of [authority, ...authority.ancestors]) {
      if (at < a.validFrom || at >= a.validUntil || (a.revokedAt !== null && at >= a.revokedAt)) return null;
      const k = a.doc.knowledge;
      if (!k) return null;
      collections = collections ? collections.filter((c) => k.collections.includes(c)) : [...k.collections];
      classes = classes ? classes.filter((c) => k.classes.includes(c)) : [...k.classes];
    }
    if (!collections?.length || !classes?.length) return null;
    return { collections, classes };
  };
}
