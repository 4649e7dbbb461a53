import type { Check } from "./check.ts";
import type { ClientModeOptions } from "./options.ts";
import type { Reporter } from "./report.ts";
export function keyboardCheckList(): Pick<Check, "group" | "name" | "description">[] {
  return [];
}
export async function checkKeyboard(_o: ClientModeOptions, _r: Reporter): Promise<void> {}
