// The console is built into dist/, which the gateway serves at "/" (gateway/console.py).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
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
