// Loaded by the WebSocket probe before undici. undici parses HTTP with a WebAssembly module; V8's optimising
// tier-up of it costs tens of MiB of peak memory for no gain at one probe a second, so WebAssembly stays on
// Liftoff's baseline code (figure and command in bench/README.md). Only runs with a --ws probe set it: the flag is
// process-wide, and the log watch's own search runs faster optimised.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
