// Optional dependencies, loaded on first use with require(). In the CommonJS bundle an import() of a package
// would start Node's ES module loader just for it, costing start-up time and memory.
import { createRequire } from 'node:module';

/** require(), relative to sdwrap's own files. */
export const requireOptional = createRequire(import.meta.url);
