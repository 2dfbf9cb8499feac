import path from "node:path";
import type { NextConfig } from "next";

// The typed client is linked from ../../clients/typescript (TypeScript source): Next compiles
// it, and the root is the repository so the bundler may read files outside this folder.
const root = path.join(__dirname, "..", "..");

const nextConfig: NextConfig = {
  transpilePackages: ["@user-service/client"],
  turbopack: { root },
  outputFileTracingRoot: root,
  poweredByHeader: false,
};

export default nextConfig;
