# The single product image: CSI plugin (controller and node) and admission webhook.
# The JuiceFS client itself runs from the mount image (juicedata/mount), not from this one.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
# mount/umount (util-linux) and fuse3 are used by the node plugin for bind mounts and unmounts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends util-linux fuse3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY cli ./cli
COPY lib ./lib
COPY driver ./driver
COPY webhook ./webhook
# Node 24 runs the TypeScript sources directly (type stripping): no build step, no source maps to ship.
# The compile cache is warmed at build time (the webhook's root file system is read-only at run time):
# it saves the type stripping and compilation on every start, and about 25 MB of memory per process.
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN node --input-type=module -e 'await import("/app/cli/main.ts"); await import("/app/driver/main.ts"); await import("/app/webhook/main.ts"); await import("/app/webhook/offline.ts")'
ENTRYPOINT ["node", "/app/bin/juicefs-csi.js"]
CMD ["--help"]
