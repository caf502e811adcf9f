// HOST:PORT addresses, IPv6 in brackets ("[::1]:7070"), one way for every layer.

/** The host of "HOST:PORT" or "[V6]:PORT", without brackets ("[::1]:7070" → "::1"). */
export function hostOf(address: string): string {
  return address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

/** "HOST:PORT", bracketing an IPv6 host so the port stays separable. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
