/**
 * What the data path is in the kernel at one moment, as one JSON object on stdout, read through the addon
 * (no bpftool): every pin under the pin directory with the id of its program or map, the programs in our
 * XDP and tc slots of each interface, the XDP redirect devices (the device map, by name) and the number of
 * conntrack entries. Usage (lab VM payloads): node dist/test/integration/vm/datapath-snap.js <pin dir> <iface>...
 */
import * as fs from 'fs';
import * as path from 'path';
import { layout } from '../../../src/bpf/abi';
import { TC_HANDLE, TC_PRIORITY } from '../../../src/bpf/attach';
import { redirectDevices } from '../../../src/bpf/devmap';
import { native } from '../../../src/bpf/native';

function withPin<T>(file: string, fn: (fd: number) => T): T | undefined {
  const fd = native.objGet(file);
  if (fd === null) return undefined;
  try {
    return fn(fd);
  } finally {
    native.closeFd(fd);
  }
}

function main(): void {
  const [pinDir, ...ifaces] = process.argv.slice(2);
  if (!pinDir) throw new Error('usage: datapath-snap <pin dir> <iface>...');
  const pins: Record<string, number> = {};
  for (const f of fs.existsSync(pinDir) ? fs.readdirSync(pinDir) : []) {
    // a program's info call on a map descriptor would fill in the map's: the name says which it is
    const id = withPin(path.join(pinDir, f), (fd) => (f.startsWith('prog_') ? native.progInfo(fd).id : native.mapInfo(fd).id));
    if (id !== undefined) pins[f] = id;
  }
  const attached: Record<string, number> = {};
  const names = new Map<number, string>();
  for (const i of fs.readdirSync('/sys/class/net')) names.set(native.ifIndex(i), i);
  for (const i of ifaces) {
    const ifindex = native.ifIndex(i);
    attached[`${i} xdp`] = native.xdpQuery(ifindex).progId;
    for (const dir of ['ingress', 'egress'] as const) attached[`${i} ${dir}`] = native.tcQuery(ifindex, dir, TC_HANDLE, TC_PRIORITY);
  }
  const redirect = withPin(path.join(pinDir, layout.pin.devMap), (fd) => redirectDevices(fd).map((x) => names.get(x) ?? `#${x}`)) ?? [];
  const ctEntries = withPin(path.join(pinDir, layout.pin.ctMap), (fd) => native.mapDump(fd).count) ?? null;
  process.stdout.write(`${JSON.stringify({ pins, attached, redirect, ctEntries })}\n`);
}

main();
