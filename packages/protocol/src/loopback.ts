/**
 * Loopback addresses: where gbt serves what only this machine may reach (the agent's routes, a
 * node without API keys). One definition for every server and command.
 */

/** Whether `host` (a listen address or URL host, IPv6 with or without brackets) is loopback. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Whether an http(s) URL points at a loopback host. */
export function isLoopbackUrl(url: string): boolean {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}
