import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The dashboard page: plain TypeScript and DOM, bundled by vite into dist/dashboard/ (by
 * `npm run build`). Relative asset links (base './'), so the page works wherever the server
 * is mounted; no CDN, nothing loaded from elsewhere.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
