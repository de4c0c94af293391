// Vite builds ui/ into static files that the kiln binary embeds (docs/ui.md); `npm run ui:dev`
// serves it with hot reload against a kiln on KILN_URL (default http://127.0.0.1:8000).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const kiln = process.env.KILN_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    // One page, a few files: no source maps in the binary, and no inlined assets to keep the
    // Content-Security-Policy simple.
    sourcemap: false,
    assetsInlineLimit: 0,
    target: 'es2022',
  },
  server: {
    proxy: { '/v1': kiln, '/metrics': kiln },
  },
});
