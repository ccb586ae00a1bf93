/** The IPVS generic-netlink client and the pieces other modules may reuse. */
export { IpvsClient, type ApplyOptions, type ApplyResult, type IpvsClientOptions, type OpResult } from './client';
export type { OpOutcome } from './batch';
export { addressToBytes, bytesToAddress, canonicalAddress, familyOf, AddressError } from './address';
export { tunnelFlagBits } from './codec';
