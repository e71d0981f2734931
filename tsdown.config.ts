import { defineConfig } from 'tsdown';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'hono/index': 'src/hono/index.ts',
    'workers/index': 'src/workers/index.ts',
    'serverless/index': 'src/serverless/index.ts',
    'gateway/index': 'src/gateway/index.ts',
    'gateway/cli': 'src/gateway/cli.ts',
    'testing/index': 'src/testing/index.ts',
  },
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  dts: true,
  clean: true,
  sourcemap: false,
});
