/**
 * The frame decoder fuzzer (tools/fuzz/decoder.ts) in short seeded runs, so that every test
 * run throws a hundred thousand fresh inputs at the decoder; `deno task fuzz-decoder` runs
 * millions.
 */

import assert from "node:assert/strict";
import { DOCUMENTED_KINDS, fuzzDecoder } from "../tools/fuzz/decoder.ts";
import { malformedFrames } from "../tools/fuzz/frames.ts";
import { Prng } from "../tools/fuzz/prng.ts";
import { FrameDecoder } from "../lib/protocol/frame_decoder.ts";
import { ProtocolError } from "../lib/protocol/errors.ts";

for (const seed of [1, 20240102, 4_000_000_007]) {
  Deno.test({
    name: `fuzz-decoder: 30000 inputs (seed ${seed}) raise only documented ProtocolErrors`,
    permissions: "none",
    fn() {
      const report = fuzzDecoder({ iterations: 30_000, seed });
      for (const kind of Object.keys(report.errors)) {
        assert.ok(DOCUMENTED_KINDS.has(kind as never), `undocumented kind ${kind}`);
      }
      // Every shape of input was tried, and valid frames did come out.
      assert.equal(Object.keys(report.shapes).length, 4);
      assert.ok(report.framesDecoded > 10_000, `${report.framesDecoded} frames decoded`);
    },
  });
}

Deno.test({
  name: "each malformed frame of the fuzzers gets the verdict it is meant to",
  permissions: "none",
  fn() {
    const rng = new Prng(7);
    for (const littleEndian of [false, true]) {
      for (const bad of malformedFrames(rng, littleEndian)) {
        const decoder = new FrameDecoder({ littleEndian });
        assert.throws(
          () => decoder.pushFrames(bad.bytes),
          (error) =>
            error instanceof ProtocolError && error.kind === bad.kind && error.field === bad.field,
          bad.name,
        );
      }
    }
  },
});

Deno.test({
  name: "the fuzzer's generator replays exactly from its seed",
  permissions: "none",
  fn() {
    const a = new Prng(42);
    const b = new Prng(42);
    assert.deepEqual(a.bytes(64), b.bytes(64));
    assert.notDeepEqual(new Prng(43).bytes(64), new Prng(42).bytes(64));
  },
});
