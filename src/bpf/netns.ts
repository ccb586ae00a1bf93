/** Run synchronous work inside a network namespace (the main thread switches and comes back). */
import { native } from './native';

export function netnsPath(name: string): string {
  return name.startsWith('/') ? name : `/run/netns/${name}`;
}

export function inNetns<T>(ns: string | undefined, fn: () => T): T {
  if (!ns) return fn();
  const prev = native.netnsEnter(netnsPath(ns));
  try {
    return fn();
  } finally {
    native.netnsRestore(prev);
  }
}
