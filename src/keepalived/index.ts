/** keepalived.conf's LVS half as a rule source: parser, health state machine, checkers. */
export * from './config';
export * from './errors';
export { lexConfig, fsSource, MAX_INCLUDE_DEPTH, type FileSource, type Statement } from './lexer';
export { parseKeepalivedConfig, splitCommand, MAX_GROUP_RANGE } from './parse';
export { HealthState, type HealthEvents, type RealServerHealth } from './state';
export { probe, httpRequest, dnsQuery, type ProbeResult } from './probes';
export { CheckScheduler, runNotify, BOOTSTRAP_DELAY_S, DEFAULT_MAX_CONCURRENT, type SchedulerOptions } from './scheduler';
