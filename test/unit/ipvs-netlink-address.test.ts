import { isIPv4 } from 'node:net';
import { addressToBytes, bytesToAddress, canonicalAddress, familyOf, AddressError } from '../../src/ipvs/netlink/address';

describe('address text <-> bytes', () => {
  test('IPv4 dotted quad', () => {
    expect(addressToBytes('inet', '192.0.2.254')).toEqual(Buffer.from([192, 0, 2, 254]));
    expect(bytesToAddress('inet', Buffer.from([10, 0, 0, 1, 9, 9]))).toBe('10.0.0.1');
    expect(() => addressToBytes('inet', '10.0.0')).toThrow(AddressError);
    expect(() => addressToBytes('inet', '::1')).toThrow(AddressError);
  });

  test('IPv4 text is accepted exactly when net.isIPv4 accepts it, and read as the octets it names', () => {
    const words = ['0', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '300', '00', '01', '010', '1000', '', 'a', '-1', '+1', ' 1', '1 '];
    let seed = 3;
    const pick = (): string => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return words[seed % words.length];
    };
    const texts = ['1.2.3.4', '1.2.3', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3.4.5', '', '0.0.0.0', '255.255.255.255'];
    for (let i = 0; i < 4000; i++) texts.push([pick(), pick(), pick(), pick()].slice(0, 3 + (i % 3)).join('.'));
    for (const t of texts) {
      if (isIPv4(t)) expect([...addressToBytes('inet', t)]).toEqual(t.split('.').map(Number));
      else expect(() => addressToBytes('inet', t)).toThrow(AddressError);
    }
  });

  test.each([
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:0:1:0:0:0', '2001:db8:0:0:1::'], // longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['0:0:0:0:0:0:0:2', '::2'],
    ['::c000:201', '::192.0.2.1'], // IPv4-compatible: glibc's inet_ntop (and so ipvsadm -n) writes a dotted quad
  ])('IPv6 %s is written %s (as inet_ntop writes it)', (input, canonical) => {
    expect(canonicalAddress('inet6', input)).toBe(canonical);
  });

  test('IPv6 bytes', () => {
    const b = addressToBytes('inet6', 'fd00:1::a:b');
    expect(b.toString('hex')).toBe('fd0000010000000000000000000a000b');
    expect(() => addressToBytes('inet6', 'fe80::1%eth0')).toThrow(AddressError);
    expect(() => addressToBytes('inet6', '1.2.3.4')).toThrow(AddressError);
  });

  test('familyOf', () => {
    expect(familyOf('1.2.3.4')).toBe('inet');
    expect(familyOf('ff02::1')).toBe('inet6');
    expect(familyOf('eth0')).toBeNull();
  });
});
