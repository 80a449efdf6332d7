// esbuild inject: the bundle is CommonJS, where import.meta.url does not exist.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;
