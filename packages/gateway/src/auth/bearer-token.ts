/**
 * The bearer token of an `Authorization` header, the one parser the gateway uses for API keys,
 * the admin token and anything else sent as `Bearer <token>` (the hot path and the Hono routes
 * alike). The scheme is case-insensitive; anything else is no token.
 */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (header === undefined || header === null || header.length < 8) return undefined;
  if (header.charCodeAt(6) !== 0x20 || header.slice(0, 6).toLowerCase() !== "bearer") return undefined;
  return header.slice(7).trim();
}
