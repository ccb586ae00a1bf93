/**
 * ipvsadm 1.31's command-line vocabulary, as data: the popt option table, the option classes that
 * the legality table is indexed by, and the table of which option each command requires, allows
 * or forbids. Texts (optnames, cmdnames) are those ipvsadm prints in its messages.
 */

export type ArgKind = 'none' | 'required' | 'optional';

/** What an option means to the parser (popt's `val`). */
export type OptionTag =
  | 'A' | 'E' | 'D' | 'C' | 'L' | 'Z' | 'a' | 'e' | 'd' | 'set' | 'h' | 'v' | 'R' | 'S'
  | 'start-daemon' | 'stop-daemon'
  | 't' | 'u' | 'sctp' | 'f' | 's' | 'p' | 'M' | 'r' | 'm' | 'i' | 'g' | 'w' | 'x' | 'y'
  | 'n' | 'c' | 'mcast-interface' | 'syncid' | 'timeout' | 'daemon' | 'stats' | 'rate'
  | 'thresholds' | 'persistent-conn' | 'nosort' | 'sort' | 'X' | '6' | 'o' | 'pe' | 'b'
  | 'mcast-group' | 'mcast-port' | 'mcast-ttl' | 'sync-maxlen' | 'tun-info' | 'tun-type'
  | 'tun-port' | 'tun-nocsum' | 'tun-csum' | 'tun-remcsum';

export interface OptionDef {
  long: string;
  short?: string;
  arg: ArgKind;
  tag: OptionTag;
}

/** The popt table, in ipvsadm's order (the order matters only for duplicate names: "list" twice). */
export const OPTION_TABLE: readonly OptionDef[] = [
  { long: 'add-service', short: 'A', arg: 'none', tag: 'A' },
  { long: 'edit-service', short: 'E', arg: 'none', tag: 'E' },
  { long: 'delete-service', short: 'D', arg: 'none', tag: 'D' },
  { long: 'clear', short: 'C', arg: 'none', tag: 'C' },
  { long: 'list', short: 'L', arg: 'none', tag: 'L' },
  { long: 'list', short: 'l', arg: 'none', tag: 'L' },
  { long: 'zero', short: 'Z', arg: 'none', tag: 'Z' },
  { long: 'add-server', short: 'a', arg: 'none', tag: 'a' },
  { long: 'edit-server', short: 'e', arg: 'none', tag: 'e' },
  { long: 'delete-server', short: 'd', arg: 'none', tag: 'd' },
  { long: 'set', arg: 'none', tag: 'set' },
  { long: 'help', short: 'h', arg: 'none', tag: 'h' },
  { long: 'version', short: 'v', arg: 'none', tag: 'v' },
  { long: 'restore', short: 'R', arg: 'none', tag: 'R' },
  { long: 'save', short: 'S', arg: 'none', tag: 'S' },
  { long: 'start-daemon', arg: 'required', tag: 'start-daemon' },
  { long: 'stop-daemon', arg: 'required', tag: 'stop-daemon' },
  { long: 'tcp-service', short: 't', arg: 'required', tag: 't' },
  { long: 'udp-service', short: 'u', arg: 'required', tag: 'u' },
  { long: 'sctp-service', arg: 'required', tag: 'sctp' },
  { long: 'fwmark-service', short: 'f', arg: 'required', tag: 'f' },
  { long: 'scheduler', short: 's', arg: 'required', tag: 's' },
  { long: 'persistent', short: 'p', arg: 'optional', tag: 'p' },
  { long: 'netmask', short: 'M', arg: 'required', tag: 'M' },
  { long: 'real-server', short: 'r', arg: 'required', tag: 'r' },
  { long: 'masquerading', short: 'm', arg: 'none', tag: 'm' },
  { long: 'ipip', short: 'i', arg: 'none', tag: 'i' },
  { long: 'gatewaying', short: 'g', arg: 'none', tag: 'g' },
  { long: 'weight', short: 'w', arg: 'required', tag: 'w' },
  { long: 'u-threshold', short: 'x', arg: 'required', tag: 'x' },
  { long: 'l-threshold', short: 'y', arg: 'required', tag: 'y' },
  { long: 'numeric', short: 'n', arg: 'none', tag: 'n' },
  { long: 'connection', short: 'c', arg: 'none', tag: 'c' },
  { long: 'mcast-interface', arg: 'required', tag: 'mcast-interface' },
  { long: 'syncid', arg: 'required', tag: 'syncid' },
  { long: 'timeout', arg: 'none', tag: 'timeout' },
  { long: 'daemon', arg: 'none', tag: 'daemon' },
  { long: 'stats', arg: 'none', tag: 'stats' },
  { long: 'rate', arg: 'none', tag: 'rate' },
  { long: 'thresholds', arg: 'none', tag: 'thresholds' },
  { long: 'persistent-conn', arg: 'none', tag: 'persistent-conn' },
  { long: 'nosort', arg: 'none', tag: 'nosort' },
  { long: 'sort', arg: 'none', tag: 'sort' },
  { long: 'exact', short: 'X', arg: 'none', tag: 'X' },
  { long: 'ipv6', short: '6', arg: 'none', tag: '6' },
  { long: 'ops', short: 'o', arg: 'none', tag: 'o' },
  { long: 'pe', arg: 'required', tag: 'pe' },
  { long: 'sched-flags', short: 'b', arg: 'required', tag: 'b' },
  { long: 'mcast-group', arg: 'required', tag: 'mcast-group' },
  { long: 'mcast-port', arg: 'required', tag: 'mcast-port' },
  { long: 'mcast-ttl', arg: 'required', tag: 'mcast-ttl' },
  { long: 'sync-maxlen', arg: 'required', tag: 'sync-maxlen' },
  { long: 'tun-info', arg: 'none', tag: 'tun-info' },
  { long: 'tun-type', arg: 'required', tag: 'tun-type' },
  { long: 'tun-port', arg: 'required', tag: 'tun-port' },
  { long: 'tun-nocsum', arg: 'none', tag: 'tun-nocsum' },
  { long: 'tun-csum', arg: 'none', tag: 'tun-csum' },
  { long: 'tun-remcsum', arg: 'none', tag: 'tun-remcsum' },
];

/** Option classes (ipvsadm's OPTC_*), in the order of its legality table; the text is its optnames[]. */
export const OPTION_CLASSES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
] as const;

export type OptionClass = (typeof OPTION_CLASSES)[number];

/** Commands (ipvsadm's CMD_*), in table order; the text is its cmdnames[]. */
export const COMMAND_NAMES = [
  'add-service',
  'edit-service',
  'delete-service',
  'flush',
  'list',
  'add-server',
  'delete-server',
  'edit-server',
  'set',
  'start-daemon',
  'stop-daemon',
  'restore',
  'save',
  'zero',
] as const;

export type CommandName = (typeof COMMAND_NAMES)[number];

/**
 * For each command, one character per option class: '+' required, 'x' forbidden,
 * '1' at most one of the '1' options, ' ' optional. Columns follow OPTION_CLASSES.
 */
export const COMMAND_OPTIONS: Readonly<Record<CommandName, string>> = {
  //                 n c s s p M r f w x y m t d s r t p n s e o p b g p t s t t t n c r
  'add-service':    'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'edit-service':   'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'delete-service': 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  flush:            'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  list:             ' 11xxxxxxxxx11       xxxxxxx xxxxx',
  'add-server':     'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  'delete-server':  'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'edit-server':    'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  set:              'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'start-daemon':   'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx',
  'stop-daemon':    'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx',
  restore:          'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  save:             ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  zero:             'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
};

/** Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*), in kernel value order. */
export const TUNNEL_TYPES = ['ipip', 'gue', 'gre'] as const;

/** The tunnel options, checked against each tunnel type (tun-port, tun-nocsum, tun-csum, tun-remcsum). */
export const TUNNEL_OPTION_CLASSES: readonly OptionClass[] = ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];

/** For each tunnel type, one character per TUNNEL_OPTION_CLASSES entry (same key as COMMAND_OPTIONS). */
export const TUNNEL_OPTIONS: Readonly<Record<(typeof TUNNEL_TYPES)[number], string>> = {
  ipip: 'xxxx',
  gue: '+111',
  gre: 'x11x',
};

/**
 * Schedulers Debian bookworm's 6.1 kernel can load ("none" is accepted by the kernel: no
 * scheduler). "twos" exists in 6.1's source but CONFIG_IP_VS_TWOS is not set there.
 */
export const KNOWN_SCHEDULERS: readonly string[] = [
  'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'none',
];

/** Persistence engines in Linux 6.1. */
export const KNOWN_PERSISTENCE_ENGINES: readonly string[] = ['sip'];
