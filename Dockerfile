# recflow image: workers, serving replicas and the CLI. GPU training: build with --build-arg GPU=1 on a CUDA host.
FROM node:20-bookworm-slim
ARG GPU=0
WORKDIR /app
ENV RECFLOW_HOME=/data CI=true
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --include=optional \
 && if [ "$GPU" = "1" ]; then npm install --no-save @tensorflow/tfjs-node-gpu@4.22.0; fi
COPY . .
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/recflow.js"]
CMD ["--help"]
