# The single product image: CSI plugin (controller and node), admission webhook and dashboard.
# The JuiceFS client itself runs from the mount image (juicedata/mount), not from this one.
#
# Two ways to build it, one description: `docker build .` runs this file; `npm run image` (no Docker,
# nothing pulled) assembles the same image from Debian packages and the project's own Node 24 and
# reads ENTRYPOINT, CMD, ENV, USER, LABEL, WORKDIR and the COPY sources from here (test/image checks
# that the two cannot drift). ENTRYPOINT and CMD stay in the JSON form: that image has no shell.
FROM node:24-slim
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV NODE_ENV=production
LABEL org.opencontainers.image.title=juicefs-csi \
      org.opencontainers.image.description="JuiceFS CSI driver for Kubernetes: CSI plugin, admission webhook and dashboard" \
      org.opencontainers.image.version=0.1.0 \
      org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.source=https://github.com/juicedata/juicefs-csi
WORKDIR /app
# mount/umount (util-linux) and fusermount3 (fuse3) are what the node plugin execs for bind mounts and
# unmounts; CA certificates for TLS to anything but the API server (whose CA is the service account's).
RUN apt-get update \
 && apt-get install -y --no-install-recommends mount fuse3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY cli ./cli
COPY lib ./lib
COPY driver ./driver
COPY webhook ./webhook
COPY dashboard ./dashboard
# Node 24 runs the TypeScript sources directly (type stripping): no build step, no source maps to ship.
# The compile cache is warmed at build time (the webhook's root file system is read-only at run time):
# it saves the type stripping and compilation on every start, and about 25 MB of memory per process.
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN node --input-type=module -e 'await import("/app/cli/main.ts"); await import("/app/driver/main.ts"); await import("/app/webhook/main.ts"); await import("/app/webhook/offline.ts"); await import("/app/dashboard/main.ts")'
# root: the node plugin mounts; the chart runs the webhook as uid 1000 (the image's user "node").
USER root
ENTRYPOINT ["node", "/app/bin/juicefs-csi.js"]
CMD ["--help"]
