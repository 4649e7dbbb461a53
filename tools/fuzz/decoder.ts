/**
 * `deno task fuzz-decoder [--iterations N] [--seed S]`: feeds FrameDecoder millions of inputs
 * (pure random bytes, runs of valid frames, frames that break one rule, and mutations of
 * valid frames), each in one push and again in random splits, and checks that:
 *
 * - nothing but a ProtocolError of a documented kind ever escapes;
 * - splitting the input never changes the outcome (same frames, same error);
 * - every frame handed out is a valid frame and a piece of the input, in order, and stays so
 *   when the caller reuses its buffer;
 * - a valid run comes out byte for byte, and what is not handed out is still held;
 * - the decoder never holds more than one frame's worth (the header is checked first);
 * - each malformed kind is reported as that kind, on that field.
 *
 * Exits non-zero with the seed and the failing input on the first violation.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ProtocolError, type ProtocolErrorKind } from "../../lib/protocol/errors.ts";
import { decodeFrameBody, DEFAULT_MAX_FRAME, LENGTH_FIELD_SIZE } from "../../lib/protocol/frame.ts";
import { FrameDecoder, splitFrames } from "../../lib/protocol/frame_decoder.ts";
import { concat, malformedFrame, mutate, randomFrames } from "./frames.ts";
import { freshSeed, Prng } from "./prng.ts";
import { runTool } from "../../lib/cli/args.ts";

/** The kinds ProtocolError documents; anything else escaping the decoder is a bug. */
export const DOCUMENTED_KINDS: ReadonlySet<ProtocolErrorKind> = new Set([
  "identify",
  "negative-length",
  "length-mismatch",
  "frame-too-large",
  "date-out-of-range",
  "truncated",
]);

/** Options for {@linkcode fuzzDecoder}. */
export interface FuzzDecoderOptions {
  iterations: number;
  seed: number;
  /** Called now and then with the number of inputs done. */
  progress?: (done: number) => void;
}

/** What a fuzz run saw. */
export interface FuzzDecoderReport {
  seed: number;
  iterations: number;
  /** Inputs of each shape. */
  shapes: Record<string, number>;
  /** ProtocolErrors of each kind (the only outcome other than frames). */
  errors: Record<string, number>;
  framesDecoded: number;
  bytesFed: number;
  seconds: number;
}

/** A broken invariant, with what is needed to replay it. */
export class FuzzFailure extends Error {
  readonly input: Uint8Array;
  readonly iteration: number;
  readonly littleEndian: boolean;
  readonly maxFrame: number;

  constructor(message: string, input: Uint8Array, where: FailureContext) {
    super(message);
    this.name = "FuzzFailure";
    this.input = input;
    this.iteration = where.iteration;
    this.littleEndian = where.littleEndian;
    this.maxFrame = where.maxFrame;
  }
}

/** Which input failed, and how it was decoded. */
export interface FailureContext {
  iteration: number;
  littleEndian: boolean;
  maxFrame: number;
}

/** The outcome of feeding one input. */
interface Outcome {
  frames: Uint8Array;
  error?: ProtocolError;
  held: number;
}

/** Feeds `input` in the given pieces; anything thrown but a ProtocolError propagates. */
function feed(input: Uint8Array, cuts: number[], littleEndian: boolean, maxFrame: number): Outcome {
  const decoder = new FrameDecoder({ littleEndian, maxFrame });
  const parts: Uint8Array[] = [];
  let start = 0;
  for (const end of [...cuts, input.length]) {
    // A copy the "socket" reuses at once: frames handed out must not alias it.
    const chunk = input.slice(start, end);
    start = end;
    try {
      parts.push(decoder.pushFrames(chunk));
      chunk.fill(0xee);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      const preceding = (error as { precedingFrames?: Uint8Array }).precedingFrames;
      if (preceding) parts.push(preceding);
      return { frames: concat(parts), error, held: decoder.buffered };
    }
    if (decoder.buffered > maxFrame + LENGTH_FIELD_SIZE) {
      throw new Error(
        `decoder holds ${decoder.buffered} bytes, more than one frame of at most ${maxFrame}`,
      );
    }
  }
  return { frames: concat(parts), held: decoder.buffered };
}

/** Feeds `input` through push(), which decodes messages too; returns how many. */
function feedMessages(input: Uint8Array, cuts: number[], littleEndian: boolean, maxFrame: number) {
  const decoder = new FrameDecoder({ littleEndian, maxFrame });
  let count = 0;
  let start = 0;
  for (const end of [...cuts, input.length]) {
    try {
      count += decoder.push(input.slice(start, end)).length;
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      break;
    }
    start = end;
  }
  return count;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(outcome: Outcome): string {
  const error = outcome.error ? `${outcome.error.kind}/${outcome.error.field}` : "no error";
  return `${outcome.frames.length} frame bytes, ${error}, ${outcome.held} held`;
}

/** Runs the decoder fuzzer; throws {@linkcode FuzzFailure} at the first broken invariant. */
export function fuzzDecoder(options: FuzzDecoderOptions): FuzzDecoderReport {
  const rng = new Prng(options.seed);
  const shapes: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let framesDecoded = 0;
  let bytesFed = 0;
  const started = performance.now();
  for (let i = 0; i < options.iterations; i++) {
    if (options.progress && i % 100_000 === 0 && i > 0) options.progress(i);
    const littleEndian = rng.chance(0.5);
    const maxFrame = rng.pick([DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME, 32, 100, 2 ** 31 - 1]);
    let shape: string;
    let input: Uint8Array;
    let expected: { kind: ProtocolErrorKind; field: string } | "valid" | undefined;
    const r = rng.int(100);
    if (r < 25) {
      shape = "random bytes";
      input = rng.bytes(rng.int(rng.chance(0.95) ? 64 : 1024));
    } else if (r < 40) {
      shape = "valid frames";
      input = randomFrames(rng, rng.range(0, 5), littleEndian, maxFrame);
      expected = "valid";
    } else if (r < 55) {
      shape = "one malformed frame after valid ones";
      const bad = malformedFrame(rng, littleEndian, maxFrame);
      input = concat([randomFrames(rng, rng.int(3), littleEndian, maxFrame), bad.bytes]);
      expected = { kind: bad.kind, field: bad.field };
    } else {
      shape = "mutated frames";
      input = mutate(rng, randomFrames(rng, rng.range(1, 4), littleEndian, maxFrame), littleEndian);
    }
    shapes[shape] = (shapes[shape] ?? 0) + 1;
    bytesFed += input.length;
    const cuts: number[] = [];
    const step = Math.max(40, input.length >> 3);
    for (let at = rng.int(8) + 1; at < input.length; at += rng.range(1, step)) cuts.push(at);
    const fail = (why: string) => {
      throw new FuzzFailure(
        `${why} (${shape}, ${littleEndian ? "little" : "big"}-endian, maxFrame ${maxFrame})`,
        input,
        { iteration: i, littleEndian, maxFrame },
      );
    };
    let whole: Outcome;
    let split: Outcome;
    try {
      whole = feed(input, [], littleEndian, maxFrame);
      split = feed(input, cuts, littleEndian, maxFrame);
      if (i % 16 === 0) feedMessages(input, cuts, littleEndian, maxFrame);
    } catch (error) {
      return fail(`decoder threw ${error instanceof Error ? error.stack : String(error)}`);
    }
    if (whole.error) {
      const { kind, field, message } = whole.error;
      errors[kind] = (errors[kind] ?? 0) + 1;
      if (!DOCUMENTED_KINDS.has(kind)) fail(`undocumented error kind ${kind}`);
      if (!message) fail("ProtocolError without a message");
      if (!split.error || split.error.kind !== kind || split.error.field !== field) {
        fail(`one push gave ${describe(whole)}, split pushes gave ${describe(split)}`);
      }
    } else if (split.error) {
      fail(`one push gave ${describe(whole)}, split pushes gave ${describe(split)}`);
    }
    // Without the frames that preceded an error (older decoders drop them), the split run
    // may have handed out more: one must then be a prefix of the other.
    const [short, long] = whole.frames.length <= split.frames.length
      ? [whole.frames, split.frames]
      : [split.frames, whole.frames];
    if (
      !equal(short, long.subarray(0, short.length)) || !equal(long, input.subarray(0, long.length))
    ) {
      fail(`frames handed out are not the input's start: ${describe(whole)} / ${describe(split)}`);
    }
    if (!whole.error && !equal(whole.frames, split.frames)) {
      fail(`one push gave ${describe(whole)}, split pushes gave ${describe(split)}`);
    }
    if (!whole.error && whole.frames.length + whole.held !== input.length) {
      fail(`${input.length} bytes in, but ${describe(whole)}`);
    }
    for (const body of splitFrames(long, { littleEndian })) {
      try {
        decodeFrameBody(body, { littleEndian });
      } catch (error) {
        fail(`a frame handed out does not decode: ${error}`);
      }
      framesDecoded++;
    }
    if (expected === "valid" && (whole.error || !equal(whole.frames, input))) {
      fail(`a run of valid frames did not come out whole: ${describe(whole)}`);
    }
    if (typeof expected === "object") {
      const got = whole.error;
      if (!got || got.kind !== expected.kind || got.field !== expected.field) {
        fail(`expected ${expected.kind}/${expected.field}, got ${describe(whole)}`);
      }
    }
  }
  return {
    seed: options.seed,
    iterations: options.iterations,
    shapes,
    errors,
    framesDecoded,
    bytesFed,
    seconds: (performance.now() - started) / 1000,
  };
}

const USAGE = `Usage: deno task fuzz-decoder [--iterations N] [--seed S]

Feeds the frame decoder random, valid, malformed and mutated inputs, whole and in random
splits; only documented ProtocolErrors may escape. Default 2000000 iterations, random seed.`;

/** Runs the fuzzer from the command line; returns the exit code. */
export function main(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      iterations: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const iterations = Number(values.iterations ?? 2_000_000);
  const seed = values.seed === undefined ? freshSeed() : Number(values.seed);
  if (!Number.isInteger(iterations) || iterations < 1 || !Number.isInteger(seed)) {
    console.error("--iterations and --seed take whole numbers. Try --help.");
    return 2;
  }
  console.log(`fuzz-decoder: ${iterations} inputs, seed ${seed}`);
  try {
    const report = fuzzDecoder({
      iterations,
      seed,
      progress: (done) => {
        if (done % 500_000 === 0) console.log(`  ${done} inputs`);
      },
    });
    const rate = Math.round(report.iterations / report.seconds);
    console.log(`  inputs by shape: ${JSON.stringify(report.shapes)}`);
    console.log(`  ProtocolErrors by kind: ${JSON.stringify(report.errors)}`);
    console.log(
      `  ${report.framesDecoded} frames decoded, ${report.bytesFed} bytes fed, ` +
        `${report.seconds.toFixed(1)} s (${rate} inputs/s)`,
    );
    console.log("fuzz-decoder: OK, only documented ProtocolErrors escaped");
    return 0;
  } catch (error) {
    if (!(error instanceof FuzzFailure)) throw error;
    console.error(
      `fuzz-decoder: FAILED at input ${error.iteration} (seed ${seed}): ${error.message}`,
    );
    const hex = [...error.input.subarray(0, 512)].map((b) => b.toString(16).padStart(2, "0"));
    console.error(`  input (${error.input.length} bytes): ${hex.join(" ")}`);
    console.error(
      `  replay: deno task fuzz-decoder --seed ${seed} --iterations ${error.iteration + 1}`,
    );
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
