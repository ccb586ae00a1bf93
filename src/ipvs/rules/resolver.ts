/**
 * Name lookups ipvsadm does through the C library (gethostbyname/gethostbyaddr, getservbyname/
 * getservbyport), answered synchronously from /etc/hosts and /etc/services, the "files" NSS source.
 * DNS and other NSS sources are not consulted.
 */
import { readFileSync } from 'fs';
import type { Family } from '../model';
import { canonicalAddress, inetPton4, inetPton6 } from './inet';

export type ServiceProtocol = 'tcp' | 'udp' | 'sctp';

export interface Resolver {
  /** gethostbyname(): the first IPv4 address of a host name, as canonical text. */
  hostToIpv4(name: string): string | undefined;
  /** gethostbyaddr(): the official name of an address (canonical text). */
  addressToHost(family: Family, address: string): string | undefined;
  /** getservbyname(name, proto). */
  serviceToPort(name: string, protocol: ServiceProtocol): number | undefined;
  /** getservbyport(port, proto): the official service name. */
  portToService(port: number, protocol: ServiceProtocol): string | undefined;
}

interface HostEntry {
  family: Family;
  address: string;
  names: string[];
}

interface ServEntry {
  name: string;
  aliases: string[];
  port: number;
  protocol: string;
}

function stripComment(line: string): string {
  const k = line.indexOf('#');
  return k >= 0 ? line.slice(0, k) : line;
}

export function parseHostsText(text: string): HostEntry[] {
  const out: HostEntry[] = [];
  for (const raw of text.split('\n')) {
    const fields = stripComment(raw).trim().split(/\s+/).filter((f) => f !== '');
    if (fields.length < 2) continue;
    const addr = fields[0];
    if (inetPton4(addr) !== null) out.push({ family: 'inet', address: canonicalAddress('inet', addr) ?? addr, names: fields.slice(1) });
    else if (inetPton6(addr) !== null)
      out.push({ family: 'inet6', address: canonicalAddress('inet6', addr) ?? addr, names: fields.slice(1) });
  }
  return out;
}

export function parseServicesText(text: string): ServEntry[] {
  const out: ServEntry[] = [];
  for (const raw of text.split('\n')) {
    const fields = stripComment(raw).trim().split(/\s+/).filter((f) => f !== '');
    if (fields.length < 2) continue;
    const m = /^(\d+)\/(\S+)$/.exec(fields[1]);
    if (!m) continue;
    const port = Number(m[1]);
    if (port > 65535) continue;
    out.push({ name: fields[0], aliases: fields.slice(2), port, protocol: m[2] });
  }
  return out;
}

/** A resolver over the text of a hosts file and a services file. */
export function createTextResolver(hostsText: string, servicesText: string): Resolver {
  const hosts = parseHostsText(hostsText);
  const services = parseServicesText(servicesText);
  return {
    hostToIpv4(name) {
      const lower = name.toLowerCase();
      return hosts.find((h) => h.family === 'inet' && h.names.some((n) => n.toLowerCase() === lower))?.address;
    },
    addressToHost(family, address) {
      return hosts.find((h) => h.family === family && h.address === address)?.names[0];
    },
    serviceToPort(name, protocol) {
      return services.find((s) => s.protocol === protocol && (s.name === name || s.aliases.includes(name)))?.port;
    },
    portToService(port, protocol) {
      return services.find((s) => s.protocol === protocol && s.port === port)?.name;
    },
  };
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A resolver over files on disk, read once on first use. */
export function createFileResolver(hostsPath = '/etc/hosts', servicesPath = '/etc/services'): Resolver {
  let inner: Resolver | undefined;
  const get = (): Resolver => (inner ??= createTextResolver(readOrEmpty(hostsPath), readOrEmpty(servicesPath)));
  return {
    hostToIpv4: (n) => get().hostToIpv4(n),
    addressToHost: (f, a) => get().addressToHost(f, a),
    serviceToPort: (n, p) => get().serviceToPort(n, p),
    portToService: (p, pr) => get().portToService(p, pr),
  };
}

/** A resolver that knows no names: everything stays numeric. */
export const NUMERIC_ONLY: Resolver = {
  hostToIpv4: () => undefined,
  addressToHost: () => undefined,
  serviceToPort: () => undefined,
  portToService: () => undefined,
};

let systemResolver: Resolver | undefined;
export function defaultResolver(): Resolver {
  return (systemResolver ??= createFileResolver());
}
