/**
 * `Authorization: Bearer <token>` parsing, once for every gbt server (API keys, the admin token,
 * link tokens). Allocation-light: it runs on the gateway's hot path for every request.
 */

/** The token of a `Bearer` authorization header (scheme case-insensitive), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined;
  if (header.charCodeAt(6) !== 0x20 || header.slice(0, 6).toLowerCase() !== "bearer") return undefined;
  const token = header.slice(7).trim();
  return token === "" || /\s/.test(token) ? undefined : token;
}
