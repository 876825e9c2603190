import { describe, expect, it } from "vitest";
import { canonicalJson, hashPayload } from "./canonical-json.js";

describe("canonicalJson", () => {
  it("sorts keys at every depth and drops whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: "x" } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}',
    );
  });

  it("hashes equal values equally whatever their key order", () => {
    expect(hashPayload({ a: 1, b: [1, 2] })).toBe(hashPayload({ b: [1, 2], a: 1 }));
    expect(hashPayload({ a: 1 })).not.toBe(hashPayload({ a: 2 }));
  });

  it("drops undefined members like JSON does", () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
  });

  it("refuses values JSON cannot carry faithfully", () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/non-finite number at \$\.a/);
    expect(() => canonicalJson({ a: 1n })).toThrow(/bigint/);
  });

  it("escapes strings as JSON does", () => {
    expect(canonicalJson('a"b\n')).toBe('"a\\"b\\n"');
  });
});
