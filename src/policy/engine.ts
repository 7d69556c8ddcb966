/**
 * The decision engine. Authorities are compiled once per bundle version into CASL abilities whose
 * rules are indexed by action; `decide` then only matches the few rules of the requested action,
 * applies limits, hours and the capping chain, and explains itself in the authority's own terms.
 * It is pure: running totals come in as `spent`, reservations go out for a store to book.
 *
 * By job: compile.ts builds the bundle, select.ts picks the authority, evaluate.ts judges one
 * authority, decide.ts combines the chain, inventory.ts lists the rules. Callers import from here.
 */
export { CompileError, compileBundle, type ActionRules, type AuthoritySource, type CompiledAuthority, type CompiledForbid, type CompiledGrant, type PolicyBundle } from './compile';
export { selectAuthority } from './select';
export { decide } from './decide';
export { ruleInventory, type RuleInfo } from './inventory';
