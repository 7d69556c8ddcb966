/** Connectors: least-privilege adapters through which Regent acts in the world. */
export type { Connector, ConnectorRegistry, Operation, RiskAttributes, Simulation, ExecutionResult } from './types';
export {
  loadConnectors,
  loadConnectorsFromSources,
  checkConnectorSources,
  readConnectorSources,
  formatConnectorErrors,
  type ConnectorSource,
  type ConnectorDeps,
  type Env,
  type CheckResult,
  type LoadConnectorsResult,
} from './load';
export { createRegistry } from './registry';
export { runOnce, runOnceAtomically, callStatus, BusinessFailure, type CallKey, type CallOptions } from './calls';
export { createRestConnector, planRequest } from './rest';
export { createEmailConnector, IDEMPOTENCY_HEADER } from './email';
export {
  createSandboxConnector,
  seedSandbox,
  readSandboxRecord,
  listSandboxRecords,
  SANDBOX_OPERATIONS,
  type SandboxRecord,
} from './sandbox';
export { ConnectorSchema, InputSchemaSchema, compileInputSchema, toJsonSchema, type ConnectorDoc, type InputSchema } from './schema';
export { DATA_CLASSES } from './message';
