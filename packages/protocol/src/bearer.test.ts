import { describe, expect, it } from "vitest";
import { bearerToken } from "./bearer.js";

describe("bearerToken", () => {
  it("takes the token of a Bearer header, whatever the scheme's case and extra spaces", () => {
    expect(bearerToken("Bearer gbt_sk_abc")).toBe("gbt_sk_abc");
    expect(bearerToken("bearer gbt_sk_abc")).toBe("gbt_sk_abc");
    expect(bearerToken("BEARER   gbt_sk_abc  ")).toBe("gbt_sk_abc");
  });

  it("refuses anything else: no header, another scheme, no token, two tokens", () => {
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "Bearer    ",
      "Basic dXNlcjpwYXNz",
      "Bearerx abc",
      "Bearer a b",
      "Token gbt_sk_abc",
    ]) {
      expect(bearerToken(header)).toBeUndefined();
    }
  });
});
