/**
 * The version of the wire protocol this code speaks, as PROTOCOL.md states it at its top (a
 * test keeps the two equal).
 *
 * @module
 */

/** PROTOCOL.md's "Protocol version N". */
export const PROTOCOL_VERSION = 1;
