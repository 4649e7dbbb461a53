/** The identify code of lib/protocol/identify.ts: both byte orders, and what an unknown code says. */

import assert from "node:assert/strict";
import { ProtocolError } from "../lib/protocol/errors.ts";
import { DISPLAY, encodeIdentify, KEYBOARD, parseIdentify } from "../lib/protocol/identify.ts";

function test(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

function assertIdentifyError(bytes: Uint8Array, pattern: RegExp): ProtocolError {
  let caught: unknown;
  try {
    parseIdentify(bytes);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${caught}`);
  assert.equal(caught.field, "identify");
  assert.equal(caught.offset, 0);
  assert.match(caught.message, pattern);
  return caught;
}

test("DISPLAY is 1 and KEYBOARD is 2", () => {
  assert.equal(DISPLAY, 1);
  assert.equal(KEYBOARD, 2);
});

test("encodeIdentify() writes big-endian by default and little-endian when asked", () => {
  assert.deepEqual(encodeIdentify("display"), Uint8Array.of(0x00, 0x00, 0x00, 0x01));
  assert.deepEqual(encodeIdentify("keyboard"), Uint8Array.of(0x00, 0x00, 0x00, 0x02));
  assert.deepEqual(encodeIdentify("display", true), Uint8Array.of(0x01, 0x00, 0x00, 0x00));
  assert.deepEqual(encodeIdentify("keyboard", true), Uint8Array.of(0x02, 0x00, 0x00, 0x00));
});

test("parseIdentify() reads both roles in both byte orders", () => {
  assert.deepEqual(parseIdentify(Uint8Array.of(0x00, 0x00, 0x00, 0x01)), {
    role: "display",
    littleEndian: false,
  });
  assert.deepEqual(parseIdentify(Uint8Array.of(0x00, 0x00, 0x00, 0x02)), {
    role: "keyboard",
    littleEndian: false,
  });
  assert.deepEqual(parseIdentify(Uint8Array.of(0x01, 0x00, 0x00, 0x00)), {
    role: "display",
    littleEndian: true,
  });
  assert.deepEqual(parseIdentify(Uint8Array.of(0x02, 0x00, 0x00, 0x00)), {
    role: "keyboard",
    littleEndian: true,
  });
});

test("parseIdentify() reads the first 4 bytes of a longer view, wherever it starts", () => {
  const backing = Uint8Array.of(0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30);
  assert.deepEqual(parseIdentify(backing.subarray(1)), { role: "keyboard", littleEndian: true });
});

test("parseIdentify() accepts exactly the four encodings among all one-byte variations", () => {
  const valid = new Set(["00000001", "00000002", "01000000", "02000000"]);
  const accepted = new Set<string>();
  for (const base of [Uint8Array.of(0, 0, 0, 0), Uint8Array.of(0, 0, 0, 1)]) {
    for (let position = 0; position < 4; position++) {
      for (let value = 0; value < 256; value++) {
        const bytes = base.slice();
        bytes[position] = value;
        const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
        try {
          parseIdentify(bytes);
          assert.ok(valid.has(hex), `accepted ${hex}`);
          accepted.add(hex);
        } catch (error) {
          assert.ok(error instanceof ProtocolError, `${hex}: ${error}`);
          assert.ok(!valid.has(hex), `rejected ${hex}`);
        }
      }
    }
  }
  assert.deepEqual(accepted, valid);
});

test("parseIdentify() names an unknown code in hex and the two valid ones", () => {
  const error = assertIdentifyError(
    Uint8Array.of(0x00, 0x00, 0x00, 0x30),
    /^unknown identify code 00 00 00 30: expected 00 00 00 01 \(DISPLAY\) or 00 00 00 02 \(KEYBOARD\)$/,
  );
  assert.equal(error.kind, "identify");
  assertIdentifyError(Uint8Array.of(0x00, 0x00, 0x00, 0x03), /unknown identify code 00 00 00 03/);
  assertIdentifyError(Uint8Array.of(0xff, 0xff, 0xff, 0xff), /unknown identify code ff ff ff ff/);
  assertIdentifyError(Uint8Array.of(0x01, 0x00, 0x00, 0x01), /unknown identify code 01 00 00 01/);
});

test("parseIdentify() hints at TLS when the bytes look like a TLS handshake", () => {
  const error = assertIdentifyError(
    Uint8Array.of(0x16, 0x03, 0x01, 0x02),
    /unknown identify code 16 03 01 02: .*a TLS handshake: this port is plain TCP, use the TLS port/,
  );
  assert.equal(error.kind, "identify");
  assertIdentifyError(Uint8Array.of(0x16, 0x04, 0x01, 0x02), /^(?!.*TLS).*$/);
});

test("parseIdentify() refuses fewer than 4 bytes instead of reading past the view", () => {
  const backing = Uint8Array.of(0x00, 0x00, 0x00, 0x01);
  for (const bytes of [new Uint8Array(0), backing.subarray(0, 2), backing.subarray(0, 3)]) {
    const error = assertIdentifyError(bytes, /identify code truncated: got \d of 4 bytes/);
    assert.equal(error.kind, "truncated");
  }
});
