/** The kube oracle's pure parts: the canonical table form, and the corpus file's checks. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diffTables, parseAddrs, parseIpvsSave, parseTimeouts, renderTable, stripComments } from '../lab/kube/ipvs-table';
import { loadCorpus } from '../lab/kube/oracle';
import { runInVm } from '../lab/vm';

describe('kube oracle table form', () => {
  it('sorts services and their destinations (the kernel lists them in hash order), keeps each line as ipvsadm wrote it', () => {
    const save = [
      '-A -u 10.96.10.1:53 -s rr',
      '-a -u 10.96.10.1:53 -r 10.244.2.10:5353 -m -w 1',
      '-A -t [fd00:10:96::15]:80 -s rr -p 300',
      '-A -t 10.96.0.1:443 -s rr',
      '-a -t 10.96.0.1:443 -r 10.0.2.100:6443 -m -w 1',
      '-a -u 10.96.10.1:53 -r 10.244.1.10:5353 -m -w 1',
      '-a -t [fd00:10:96::15]:80 -r [fd00:10:244:2::150]:8080 -m -w 1',
      '',
    ].join('\n');
    const services = parseIpvsSave(save);
    expect(services.map((s) => s.key)).toEqual(['-t 10.96.0.1:443', '-t [fd00:10:96::15]:80', '-u 10.96.10.1:53']);
    expect(services[2].dests).toEqual(['-a -u 10.96.10.1:53 -r 10.244.1.10:5353 -m -w 1', '-a -u 10.96.10.1:53 -r 10.244.2.10:5353 -m -w 1']);
    const addrs = parseAddrs('7: kube-ipvs0    inet 10.96.0.1/32 scope global kube-ipvs0\\       valid_lft forever preferred_lft forever\n' +
      '7: kube-ipvs0    inet6 fd00:10:96::15/128 scope global \\       valid_lft forever preferred_lft forever\n');
    expect(addrs).toEqual(['10.96.0.1/32', 'fd00:10:96::15/128']);
    const timeouts = parseTimeouts('Timeout (tcp tcpfin udp): 900 60 120\n');
    expect(timeouts).toBe('900 60 120');
    const text = renderTable({ addrs, services, timeouts });
    expect(text).toBe([
      '[kube-ipvs0]', '10.96.0.1/32', 'fd00:10:96::15/128', '[ipvs]',
      '-A -t 10.96.0.1:443 -s rr', '-a -t 10.96.0.1:443 -r 10.0.2.100:6443 -m -w 1',
      '-A -t [fd00:10:96::15]:80 -s rr -p 300', '-a -t [fd00:10:96::15]:80 -r [fd00:10:244:2::150]:8080 -m -w 1',
      '-A -u 10.96.10.1:53 -s rr', '-a -u 10.96.10.1:53 -r 10.244.1.10:5353 -m -w 1', '-a -u 10.96.10.1:53 -r 10.244.2.10:5353 -m -w 1',
      '[timeouts tcp tcpfin udp]', '900 60 120', '',
    ].join('\n'));
    expect(stripComments(`# header\n# more\n${text}`)).toBe(text);
  });

  it('lists each difference between two tables on its own line', () => {
    const want = {
      addrs: ['10.96.0.1/32', '10.96.10.1/32'],
      services: parseIpvsSave('-A -t 10.96.0.1:443 -s rr\n-a -t 10.96.0.1:443 -r 10.0.2.100:6443 -m -w 1\n-A -t 10.96.10.1:80 -s rr -p 600\n'),
      timeouts: '900 60 120',
    };
    expect(diffTables(want, want)).toEqual([]);
    const got = {
      addrs: ['10.96.0.1/32', '10.96.10.2/32'],
      services: parseIpvsSave('-A -t 10.96.0.1:443 -s wrr\n-a -t 10.96.0.1:443 -r 10.0.2.101:6443 -m -w 1\n-A -u 10.96.10.2:53 -s rr\n'),
      timeouts: '900 120 300',
    };
    expect(diffTables(want, got)).toEqual([
      'kube-ipvs0: missing 10.96.10.1/32',
      'kube-ipvs0: extra 10.96.10.2/32',
      'ipvs -t 10.96.0.1:443: service "-A -t 10.96.0.1:443 -s rr", got "-A -t 10.96.0.1:443 -s wrr"',
      'ipvs -t 10.96.0.1:443: missing -a -t 10.96.0.1:443 -r 10.0.2.100:6443 -m -w 1',
      'ipvs -t 10.96.0.1:443: extra -a -t 10.96.0.1:443 -r 10.0.2.101:6443 -m -w 1',
      'ipvs: missing -A -t 10.96.10.1:80 -s rr -p 600 (0 destinations)',
      'ipvs: extra -A -u 10.96.10.2:53 -s rr (0 destinations)',
      'timeouts (tcp tcpfin udp): 900 60 120, got 900 120 300',
    ]);
  });

  it('names the line of input that is not ipvsadm -Sn', () => {
    expect(() => parseIpvsSave('-A -t 1.2.3.4:80 -s rr\nIP Virtual Server version 1.2.1\n')).toThrow(/line 2: not a -A\/-a line/);
    expect(() => parseIpvsSave('-a -t 1.2.3.4:80 -r 10.0.0.1:80 -m -w 1\n')).toThrow(/line 1: destination of -t 1.2.3.4:80 before its service/);
    expect(() => parseIpvsSave('-A -t 1.2.3.4:80 -s rr\n-A -t 1.2.3.4:80 -s wrr\n')).toThrow(/line 2: service -t 1.2.3.4:80 listed twice/);
  });
});

describe('kube oracle corpus file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kube-corpus-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const good = {
    description: 'd', nodeName: 'lab-node', nodeAddresses: [{ dev: 'ext0', cidr: '192.168.1.2/24' }], ipvsBefore: ['-A -t 10.99.0.5:80 -s rr'],
    kubeProxyConfiguration: { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration' },
    objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } }],
  };
  async function write(name: string, value: unknown): Promise<string> {
    const f = path.join(dir, name);
    await fs.writeFile(f, typeof value === 'string' ? value : JSON.stringify(value));
    return f;
  }

  it('loads the checked-in corpus and a minimal one', async () => {
    const c = await loadCorpus(path.join(__dirname, '../fixtures/kube/oracle/cluster.json'));
    expect(c.objects.length).toBeGreaterThan(40);
    expect((await loadCorpus(await write('good.json', good))).nodeName).toBe('lab-node');
  });

  it.each([
    ['nodeAddresses[0].cidr', { ...good, nodeAddresses: [{ dev: 'ext0', cidr: '192.168.1.2' }] }, /nodeAddresses\[0\]\.cidr: want ADDRESS\/PREFIX/],
    ['ipvsBefore', { ...good, ipvsBefore: ['ipvsadm -A -t 1.2.3.4:80'] }, /ipvsBefore: want a list of ipvsadm -A\/-a lines/],
    ['kubeProxyConfiguration', { ...good, kubeProxyConfiguration: { kind: 'KubeletConfiguration' } }, /kubeProxyConfiguration: want a kubeproxy/],
    ['objects[0]', { ...good, objects: [{ kind: 'Service' }] }, /objects\[0\]: want apiVersion, kind and metadata.name/],
    ['nodeName', { ...good, nodeName: 'Lab Node' }, /nodeName: want a DNS name/],
  ])('rejects a bad %s, naming the file and the field', async (_field, value, message) => {
    const f = await write('bad.json', value);
    await expect(loadCorpus(f)).rejects.toThrow(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ${message.source}`));
  });

  it('names the file when it is not JSON', async () => {
    const f = await write('broken.json', '{"description": ');
    await expect(loadCorpus(f)).rejects.toThrow(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
  });
});

describe('lab VM guest forwards (checked before anything boots)', () => {
  it.each([
    [{ guestAddress: '10.0.2.2', guestPort: 6443, hostPort: 1 }, /10\.0\.2\.2 is not a free address of 10\.0\.2\.0\/24/],
    [{ guestAddress: '10.0.3.100', guestPort: 6443, hostPort: 1 }, /10\.0\.3\.100 is not a free address/],
    [{ guestAddress: '10.0.2.100', guestPort: 0, hostPort: 1 }, /guest port 0 is not a TCP port/],
    [{ guestAddress: '10.0.2.100', guestPort: 6443, hostPort: 70000 }, /host port 70000 is not a TCP port/],
    [{ guestAddress: '10.0.2.100', guestPort: 6443, hostPort: 1, hostAddress: 'localhost' }, /host address localhost is not an IPv4 address/],
  ])('rejects %j', async (fwd, message) => {
    await expect(runInVm({ script: 'true', guestForwards: [fwd] })).rejects.toThrow(message);
  });
  it('rejects the same guest address and port twice', async () => {
    const f = { guestAddress: '10.0.2.100', guestPort: 6443, hostPort: 1 };
    await expect(runInVm({ script: 'true', guestForwards: [f, { ...f, hostPort: 2 }] })).rejects.toThrow(/10\.0\.2\.100:6443 is given twice/);
  });
});
