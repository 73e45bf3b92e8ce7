# syntax=docker/dockerfile:1
# Gatehouse container: build with dev dependencies, run with production ones only.
# test/server/container.test.ts checks this file: COPY sources, .dockerignore, and the runtime
# stage's layout running `node dist/server.js`.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 and bcrypt build from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
# postinstall generates both Prisma clients into src/generated/ with the `prisma` dev dependency.
RUN npm ci
COPY tsconfig.json tsconfig.build.json esbuild.config.ts ./
COPY src ./src
# Type-checks, then bundles src/ (the generated clients too) into dist/ (esbuild.config.ts).
RUN npm run build

# Production dependencies only, compiled for the same base image as the runtime. No scripts
# run here: prune only removes packages (tsx, prisma, typescript, …).
FROM build AS prod-deps
RUN npm prune --omit=dev

FROM node:22-bookworm-slim AS runtime
# The heap limit keeps a busy instance near 180 MB resident (README "Performance"); raise it
# with NODE_OPTIONS for very large deployments. The young generation is pinned at Node 20's and
# 22's size: Node 24's default is twice that, and beside this limit it ran a full collection
# every 40 ms. Two malloc arenas instead of glibc's one per thread (libuv's pool hashes
# passwords, a worker checkpoints SQLite): 9-18 MB less at peak, at the same throughput.
# `npm run start:dist` starts the server with the same three.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=16" \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=file:/data/gatehouse.db
WORKDIR /app
# Read-only for the `node` user: only /data is writable.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Read at run time: the migrations (AUTO_MIGRATE=true by default) and the pages.
COPY prisma/postgresql/migrations ./prisma/postgresql/migrations
COPY prisma/sqlite/migrations ./prisma/sqlite/migrations
COPY views ./views
# `gatehouse <command>` on the PATH (e.g. docker compose exec gatehouse gatehouse migrate);
# npm run build made dist/cli.js executable.
RUN mkdir -p /data && chown node:node /data \
 && ln -s /app/dist/cli.js /usr/local/bin/gatehouse
USER node
VOLUME ["/data"]
EXPOSE 3000
# ISSUER, SECRETS and TRUST_PROXY must be given. On SIGTERM in-flight requests get
# SHUTDOWN_TIMEOUT (10s): give the container a longer stop timeout (compose: stop_grace_period).
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server.js"]
