import { defineConfig } from 'vite';

// The dashboard is a static app the gateway serves at `/` (hash routes, so no server routing).
// `npm run dev` proxies the JSON API to a running gateway (AIPG_GATEWAY_URL, default :8080).
const gateway = process.env.AIPG_GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    reportCompressedSize: false,
  },
  server: { proxy: { '/v1': { target: gateway, changeOrigin: true } } },
});
