/**
 * The texts `ipvsadm -v` and `ipvsadm -h` print (ipvsadm 1.31 as Debian bookworm builds it),
 * so that the CLI can stand in for ipvsadm in scripts that read them.
 */

const IPVSADM_VERSION = 'v1.31 2019/12/24';
/** The IPVS version ipvsadm 1.31 is compiled against. */
const COMPILED_IPVS_VERSION = '1.2.1';
const SCHEDULER_LIST = 'rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh';
const PE_LIST = 'sip';

/** `ipvsadm -v` (stdout, exit 0). */
export function versionText(): string {
  return `ipvsadm ${IPVSADM_VERSION} (compiled with popt and IPVS v${COMPILED_IPVS_VERSION})\n`;
}

/** `ipvsadm -h` (stdout, exit 0); program is argv[0] as typed. */
export function usageText(program = 'ipvsadm'): string {
  const p = program;
  const usage = [
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]`,
    `  ${p} -D virtual-service`,
    `  ${p} -C`,
    `  ${p} -R`,
    `  ${p} -S [-n]`,
    `  ${p} -a|e virtual-service -r server-address [options]`,
    `  ${p} -d virtual-service -r server-address`,
    `  ${p} -L|l [virtual-service] [options]`,
    `  ${p} -Z [virtual-service]`,
    `  ${p} --set tcp tcpfin udp`,
    `  ${p} --start-daemon {master|backup} [daemon-options]`,
    `  ${p} --stop-daemon {master|backup}`,
    `  ${p} -h`,
  ];
  const commands = [
    'Commands:',
    'Either long or short options are allowed.',
    '  --add-service     -A        add virtual service with options',
    '  --edit-service    -E        edit virtual service with options',
    '  --delete-service  -D        delete virtual service',
    '  --clear           -C        clear the whole table',
    '  --restore         -R        restore rules from stdin',
    '  --save            -S        save rules to stdout',
    '  --add-server      -a        add real server with options',
    '  --edit-server     -e        edit real server with options',
    '  --delete-server   -d        delete real server',
    '  --list            -L|-l     list the table',
    '  --zero            -Z        zero counters in a service or all services',
    '  --set tcp tcpfin udp        set connection timeout values',
    '  --start-daemon              start connection sync daemon',
    '  --stop-daemon               stop connection sync daemon',
    '  --help            -h        display this help message',
  ];
  const services = [
    'virtual-service:',
    '  --tcp-service|-t  service-address   service-address is host[:port]',
    '  --udp-service|-u  service-address   service-address is host[:port]',
    '  --sctp-service    service-address   service-address is host[:port]',
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero',
  ];
  const options = [
    'Options:',
    '  --ipv6         -6                   fwmark entry uses IPv6',
    `  --scheduler    -s scheduler         one of ${SCHEDULER_LIST},`,
    '                                      the default scheduler is wlc.',
    `  --pe            engine              alternate persistence engine may be ${PE_LIST},`,
    '                                      not set by default.',
    '  --persistent   -p [timeout]         persistent service',
    '  --netmask      -M netmask           persistent granularity mask',
    '  --real-server  -r server-address    server-address is host (and port)',
    '  --gatewaying   -g                   gatewaying (direct routing) (default)',
    '  --ipip         -i                   ipip encapsulation (tunneling)',
    '  --masquerading -m                   masquerading (NAT)',
    '  --tun-type      type                one of ipip|gue|gre,',
    '                                      the default tunnel type is ipip.',
    '  --tun-port      port                tunnel destination port',
    '  --tun-nocsum                        tunnel encapsulation without checksum',
    '  --tun-csum                          tunnel encapsulation with checksum',
    '  --tun-remcsum                       tunnel encapsulation with remote checksum',
    '  --weight       -w weight            capacity of real server',
    '  --u-threshold  -x uthreshold        upper threshold of connections',
    '  --l-threshold  -y lthreshold        lower threshold of connections',
    '  --connection   -c                   output of current IPVS connections',
    '  --timeout                           output of timeout (tcp tcpfin udp)',
    '  --daemon                            output of daemon information',
    '  --stats                             output of statistics information',
    '  --rate                              output of rate information',
    '  --exact                             expand numbers (display exact values)',
    '  --thresholds                        output of thresholds information',
    '  --persistent-conn                   output of persistent connection info',
    '  --tun-info                          output of tunnel information',
    '  --nosort                            disable sorting output of service/server entries',
    '  --sort                              does nothing, for backwards compatibility',
    '  --ops          -o                   one-packet scheduling',
    '  --numeric      -n                   numeric output of addresses and ports',
    '  --sched-flags  -b flags             scheduler flags (comma-separated)',
  ];
  const daemon = [
    'Daemon Options:',
    '  --syncid sid                        syncid for connection sync (default=255)',
    '  --sync-maxlen length                Max sync message length (default=1472)',
    '  --mcast-interface interface         multicast interface for connection sync',
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)',
    '  --mcast-port port                   UDP port (default=8848)',
    '  --mcast-ttl ttl                     Multicast TTL (default=1)',
  ];
  return (
    versionText() +
    'Usage:\n' +
    usage.join('\n') +
    '\n\n' +
    commands.join('\n') +
    '\n\n' +
    services.join('\n') +
    '\n\n' +
    options.join('\n') +
    '\n' +
    daemon.join('\n') +
    '\n'
  );
}
