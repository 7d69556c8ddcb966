import type { PolicyBundle } from './compile';

/** Every rule a bundle defines, for coverage reports. */
export interface RuleInfo {
  rule: string;
  kind: 'grant' | 'forbid' | 'perAction' | 'perPeriod' | 'tier' | 'hours';
  authority: string;
  source: string;
}

export function ruleInventory(bundle: PolicyBundle): RuleInfo[] {
  const out: RuleInfo[] = [];
  const ids = [...bundle.authorities.keys()].sort();
  for (const id of ids) {
    const a = bundle.authorities.get(id)!;
    for (const g of a.grants) {
      out.push({ rule: g.rule, kind: 'grant', authority: id, source: g.source });
      if (g.perAction) out.push({ rule: g.perAction.rule, kind: 'perAction', authority: id, source: g.perAction.source });
      if (g.perPeriod) out.push({ rule: g.perPeriod.rule, kind: 'perPeriod', authority: id, source: g.perPeriod.source });
      for (const t of [...g.tiers].sort((x, y) => (x.rule < y.rule ? -1 : 1))) out.push({ rule: t.rule, kind: 'tier', authority: id, source: t.source });
    }
    for (const f of a.forbids) out.push({ rule: f.rule, kind: 'forbid', authority: id, source: f.source });
    if (a.hours) out.push({ rule: a.hours.rule, kind: 'hours', authority: id, source: a.hours.source });
  }
  return out;
}
