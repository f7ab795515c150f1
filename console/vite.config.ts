// The console is built into dist/, which the gateway serves at "/" (gateway/console.py).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  // `npx vite` in console/: a dev server with hot reload, the API proxied to `make run`'s gateway (port 8000)
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // no inline <script>/<style>: the gateway's Content-Security-Policy allows only 'self'
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
