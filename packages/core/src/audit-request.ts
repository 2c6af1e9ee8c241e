import { type Address, getAddress } from 'viem';

/**
 * How a validator signs a request to a gateway's audit API (job evidence, batch listings, score
 * jobs): its operator key signs `auditRequestMessage` (EIP-191) and sends these headers. Defined
 * once here because both sides must produce the same text byte for byte.
 */
export const AUDIT_HEADERS = {
  validator: 'x-aipg-validator',
  timestamp: 'x-aipg-timestamp',
  signature: 'x-aipg-signature',
} as const;

/**
 * The message a validator's operator key signs for one audit request. It names the gateway, so a
 * signed request is useless at any other gateway; the timestamp bounds it in time, and a gateway
 * refuses a signature it has seen before.
 */
export function auditRequestMessage(r: {
  method: string;
  path: string;
  timestamp: number;
  gateway: Address;
}): string {
  return [
    'AIPG audit request',
    `gateway: ${getAddress(r.gateway)}`,
    `method: ${r.method.toUpperCase()}`,
    `path: ${r.path}`,
    `timestamp: ${r.timestamp}`,
  ].join('\n');
}
