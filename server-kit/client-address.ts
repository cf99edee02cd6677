/**
 * Who a request comes from, behind proxies: the model of nginx's `set_real_ip_from` with
 * `real_ip_recursive on`. Starting from the socket's peer, X-Forwarded-For is walked from
 * the right while the address reached is inside a trusted network; the first address that
 * is not is the client. A peer that is not trusted is the client itself, whatever the header
 * says. No hop count is needed, so the same setting holds with and without Knative's
 * activator in the path (Envoy → [activator] → queue-proxy → container).
 *
 * Entries left of the client are the client's own claims and are never read. A malformed
 * entry in a trusted position (a proxy that passed the header on without appending) ends the
 * walk at the last trusted address: it is neither trusted nor taken as a client.
 *
 * Limits are kept per client and per range, not per address: IPv6 hands one host a whole
 * /64 (and a site a /48), so counting single IPv6 addresses would let one client count as
 * millions.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';
import type { EnvReader } from './config.ts';

/** Loopback: direct clients on the same host, and Knative's queue-proxy, which is one. */
export const LOOPBACK_NETWORKS = '127.0.0.0/8,::1/128';

/** X-Forwarded-For entries walked at most (the header is bounded by Node's 16 KiB anyway). */
const MAX_HOPS = 32;

/**
 * Parses a comma- or space-separated list of networks (`10.244.0.0/16`, `::1/128`) and
 * single addresses. Returns the list and the entries that are not valid.
 */
export function parseNetworks(text: string): { list: BlockList; invalid: string[] } {
  const list = new BlockList();
  const invalid: string[] = [];
  for (const entry of text.split(/[\s,]+/).filter(Boolean)) {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 6 ? 128 : 32;
    const bits = prefix === undefined ? max : Number(prefix);
    // "10.0.0.0/" must not read as /0, which would trust every address.
    if (family === 0 || extra !== undefined || (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) || bits > max) {
      invalid.push(entry);
      continue;
    }
    list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { list, invalid };
}

/** Reads a trusted-proxy setting (default: loopback only), recording an invalid value. */
export function readTrustedProxies(read: EnvReader, name: string): BlockList {
  const text = read.raw(name) ?? LOOPBACK_NETWORKS;
  const { list, invalid } = parseNetworks(text);
  if (invalid.length > 0) {
    read.invalid(name, `comma-separated IPv4 or IPv6 networks or addresses such as "127.0.0.0/8,::1/128,10.244.0.0/16" (default ${LOOPBACK_NETWORKS}); not an address: ${invalid.slice(0, 3).join(', ')}`);
    return parseNetworks(LOOPBACK_NETWORKS).list;
  }
  return list;
}

/** An address as the walk compares it: IPv4-mapped IPv6 as IPv4, no zone, no port. */
function normalise(entry: string): string | undefined {
  let text = entry.trim();
  // With a port, as some proxies write it: [2001:db8::1]:443, 192.0.2.1:443.
  const withPort = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([\d.]+):(\d{1,5})$/.exec(text);
  if (withPort) {
    if (Number(withPort[2] ?? 0) > 65535) return undefined;
    text = withPort[1];
  }
  text = text.replace(/%[\w.-]+$/, '');
  if (isIPv4(text)) return text;
  if (!isIPv6(text)) return undefined;
  const groups = expandIPv6(text);
  // ::ffff:a.b.c.d, whichever way it is written.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
  }
  return text.toLowerCase();
}

function trusted(list: BlockList, address: string): boolean {
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/**
 * The client's address for a request that reached us from `peer` with `forwardedFor` (the
 * X-Forwarded-For header, one or several). `trustedProxies` are the networks whose
 * addresses are proxies that append their peer to the header.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: BlockList): string {
  let client = peer === undefined ? undefined : normalise(peer);
  if (client === undefined) return peer ?? 'unknown';
  if (!trusted(trustedProxies, client) || forwardedFor === undefined) return client;
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  for (let i = entries.length - 1, hops = 0; i >= 0 && hops < MAX_HOPS; i -= 1, hops += 1) {
    if (entries[i].trim() === '') continue;
    const next = normalise(entries[i]);
    if (next === undefined) return client;
    client = next;
    if (!trusted(trustedProxies, client)) return client;
  }
  // Every hop was trusted: the leftmost is the client (a pod calling from inside the cluster).
  return client;
}

/** The eight 16-bit groups of a valid IPv6 address (zone already removed). */
function expandIPv6(text: string): number[] {
  let address = text;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    address = `${address.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right].map((group) => parseInt(group, 16));
}

function prefixOf(address: string, groups: number): string {
  const expanded = expandIPv6(address).slice(0, groups).map((g) => g.toString(16));
  return `${expanded.join(':')}::/${groups * 16}`;
}

/**
 * The key a per-client limit counts by: an IPv4 address, or an IPv6 address's /64 (what one
 * host or home is given). Anything else (no address) is its own key.
 */
export function clientKey(address: string): string {
  return isIPv6(address) ? prefixOf(address, 4) : address;
}

/**
 * The key of the range a client is in, for limits that one range must not fill: an IPv4
 * /24, or an IPv6 /48 (what one site is given).
 */
export function rangeKey(address: string): string {
  if (isIPv4(address)) return `${address.slice(0, address.lastIndexOf('.'))}.0/24`;
  return isIPv6(address) ? prefixOf(address, 3) : address;
}
