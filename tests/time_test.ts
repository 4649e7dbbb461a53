/** Local timestamps and the display's `YYYY-MM-DD HH:mm:ss` (lib/protocol/time.ts). */

import assert from "node:assert/strict";
import { formatTimestamp, localTimestamp } from "../lib/protocol/time.ts";

function test(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

test("formatTimestamp() zero-pads every field", () => {
  assert.equal(
    formatTimestamp({ year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 }),
    "2024-01-02 03:04:05",
  );
  assert.equal(
    formatTimestamp({ year: 1999, month: 12, day: 31, hour: 23, minute: 59, second: 60 }),
    "1999-12-31 23:59:60",
  );
  assert.equal(
    formatTimestamp({ year: 2000, month: 10, day: 10, hour: 0, minute: 0, second: 0 }),
    "2000-10-10 00:00:00",
  );
});

test("formatTimestamp() pads a short year to 4 digits and leaves a long one whole", () => {
  const time = { month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  assert.equal(formatTimestamp({ year: 7, ...time }), "0007-01-01 00:00:00");
  assert.equal(formatTimestamp({ year: 0, ...time }), "0000-01-01 00:00:00");
  assert.equal(formatTimestamp({ year: 12345, ...time }), "12345-01-01 00:00:00");
  assert.equal(formatTimestamp({ year: -1, ...time }), "-0001-01-01 00:00:00");
});

test("localTimestamp() reads a date's local wall-clock fields, month counted from 1", () => {
  assert.deepEqual(localTimestamp(new Date(2024, 0, 2, 3, 4, 5, 678)), {
    year: 2024,
    month: 1,
    day: 2,
    hour: 3,
    minute: 4,
    second: 5,
  });
  assert.deepEqual(localTimestamp(new Date(1999, 11, 31, 23, 59, 59)), {
    year: 1999,
    month: 12,
    day: 31,
    hour: 23,
    minute: 59,
    second: 59,
  });
});

test("localTimestamp() defaults to now", () => {
  const before = localTimestamp(new Date());
  const time = localTimestamp();
  const after = localTimestamp(new Date());
  assert.ok(
    [before, after].some((t) => formatTimestamp(t) === formatTimestamp(time)),
    formatTimestamp(time),
  );
});
