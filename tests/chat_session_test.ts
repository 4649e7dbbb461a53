/** The chat's reconnection backoff (lib/client/chat/session.ts): full jitter within bounds. */

import assert from "node:assert/strict";
import { BACKOFF_MAX_S, BACKOFF_MIN_S, backoffSeconds } from "../lib/client/chat/session.ts";

const pure = { permissions: "none" } as const;

Deno.test(
  "backoffSeconds() stays within 0.5 s and 20 s whatever the attempt and the dice",
  pure,
  () => {
    assert.equal(BACKOFF_MIN_S, 0.5);
    assert.equal(BACKOFF_MAX_S, 20);
    for (const attempt of [1, 2, 3, 5, 8, 13, 100, 10_000]) {
      for (const roll of [0, 0.001, 0.25, 0.5, 0.999999]) {
        const wait = backoffSeconds(attempt, () => roll);
        assert.ok(wait >= 0.5 && wait <= 20, `attempt ${attempt}, roll ${roll}: ${wait}`);
      }
    }
  },
);

Deno.test(
  "backoffSeconds() is full jitter: anything up to a cap that doubles per attempt",
  pure,
  () => {
    const top = (attempt: number) => backoffSeconds(attempt, () => 0.999999);
    assert.ok(Math.abs(top(1) - 1) < 0.001);
    assert.ok(Math.abs(top(2) - 2) < 0.001);
    assert.ok(Math.abs(top(3) - 4) < 0.001);
    assert.ok(Math.abs(top(6) - 20) < 0.001, "capped at 20 s");
    assert.equal(backoffSeconds(6, () => 0.5), 10, "half the cap for a middle roll");
    assert.equal(backoffSeconds(6, () => 0), 0.5, "never below the floor");
  },
);
