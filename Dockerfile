# The Anvil gateway image: built in one stage (dependencies with their native modules, then tsc to dist/), run
# from a second that holds only the compiled build and production dependencies, as the unprivileged `node` user.
#
#   docker build -t anvil-gateway .
#   docker run -p 9000:9000 -v anvil-data:/data -e ANVIL_ROOT_ACCESS_KEY=… -e ANVIL_ROOT_SECRET_KEY=… anvil-gateway
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS build
# better-sqlite3 compiles from source when no prebuilt binary can be fetched.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY gateway ./gateway
COPY policy ./policy
COPY storage ./storage
RUN node bin/build-if-stale.js && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    ANVIL_ADDRESS=0.0.0.0:9000 \
    ANVIL_DATA_DIR=/data
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
RUN mkdir -p /data && chown node:node /data && ln -s /app/bin/anvil.js /usr/local/bin/anvil
USER node
VOLUME ["/data"]
EXPOSE 9000
# Readiness over plain HTTP; with TLS on the main port, set ANVIL_HEALTH_ADDRESS and probe that port instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9000/_anvil/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: it drains requests in flight, then exits.
STOPSIGNAL SIGTERM
CMD ["node", "dist/gateway/main.js"]
