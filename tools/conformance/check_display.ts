import type { Check } from "./check.ts";
import type { ClientModeOptions } from "./options.ts";
import type { Reporter } from "./report.ts";
export function displayCheckList(): Pick<Check, "group" | "name" | "description">[] {
  return [];
}
export async function checkDisplay(_o: ClientModeOptions, _r: Reporter): Promise<void> {}
