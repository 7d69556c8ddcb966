/** Delegated authority: documents, the decision engine and the tools around it. */
export {
  OUTCOMES,
  MODES,
  OUTCOME_RANK,
  REASON_CODES,
  lowerOutcome,
  type Outcome,
  type Mode,
  type ReasonCode,
  type Reason,
  type ApprovalRequirement,
  type MatchedRule,
  type Reservation,
  type Decision,
  type DecisionRequest,
  type Spent,
} from './types';
export {
  AuthoritySchema,
  authorityJsonSchema,
  authorityJsonSchemaText,
  writeAuthorityJsonSchema,
  AUTHORITY_SCHEMA_ID,
  type AuthorityDoc,
  type GrantDoc,
  type ForbidDoc,
} from './schema';
export {
  loadPolicies,
  loadBundleFromSources,
  readPolicySources,
  bundleVersion,
  formatLoadError,
  type PolicySource,
  type LoadError,
  type LoadResult,
  type ReadResult,
} from './load';
export {
  decide,
  selectAuthority,
  ruleInventory,
  type PolicyBundle,
  type CompiledAuthority,
  type RuleInfo,
} from './engine';
export { parseAmount, toMinor, toDecimal, formatAmount, AmountError, type AmountResult } from './amount';
export { CURRENCY_EXPONENTS, CURRENCY_CODES, currencyExponent, isCurrency } from './currencies';
export { periodWindow, PERIODS, type Period, type PeriodWindow } from './time';
export { diffBundles, compareDecisions, type BundleDiff, type DecisionChange, type DecisionAspect } from './diff';
export { benchPolicy, type BenchResult } from './bench';
export {
  EvalInputSchema,
  parseEvalInput,
  loadTestCases,
  runTestCases,
  runPolicyTests,
  rulesExercised,
  type EvalInput,
  type ParsedInput,
  type PolicyTestCase,
  type CaseResult,
  type Coverage,
  type TestReport,
  type PolicyTestRun,
  type CasesResult,
} from './testcases';
export {
  approverEligibility,
  namedApprovers,
  APPROVER_REFUSALS,
  BEYOND_OWN_AUTHORITY,
  type Approver,
  type ApprovalAsk,
  type ApproverRefusal,
  type Eligibility,
  type EligibilityInput,
} from './approvers';
export { ROLES, CAPABILITIES, abilityFor, can, type Role, type Actor, type Capability, type AppAbility, type AppAction, type AppSubject } from './roles';
