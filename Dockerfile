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
ENTRYPOINT ["node", "/app/bin/juicefs-csi.js"]
CMD ["--help"]
