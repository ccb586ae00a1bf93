/** The ipvsadm rule language: parse commands and rule files, replay them, print tables. */
export * from './command';
export * from './errors';
export { parseCommand, type ParseOptions } from './parse';
export { parseRules, tokenizeRules, type ParsedRules, type RuleLine } from './ruleFile';
export { desiredState, replayRules, type ReplayOptions, type ReplayResult } from './replay';
export {
  applyOp,
  KernelStateError,
  toDesired,
  serviceOnly,
  destinationOnly,
  type KernelErrno,
  type SimulateOptions,
} from './simulate';
export {
  formatSave,
  formatList,
  saveFormatter,
  listFormatter,
  type TableFormatter,
  formatTimeouts,
  formatDaemons,
  formatConnections,
  formatLargeNumber,
  tunnelFlagsValue,
  type FormatListOptions,
  type NameOptions,
} from './format';
export { compareServices, compareDests, sortServices, sortDests } from './sort';
export { usageText, versionText } from './help';
export {
  createFileResolver,
  createTextResolver,
  defaultResolver,
  NUMERIC_ONLY,
  type Resolver,
  type ServiceProtocol,
} from './resolver';
export { KNOWN_SCHEDULERS, KNOWN_PERSISTENCE_ENGINES } from './options';
